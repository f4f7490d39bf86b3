"""Help for the options that share a meaning across commands, and the defaults every help states.

Filled in after the parsers are built, so each command's own ``add_argument`` stays short, and
``transferkit CMD --help`` never shows an option without a word (a test checks every option).
"""

from __future__ import annotations

import argparse

__all__ = ["complete_help"]

# dest -> help, for options whose meaning is the same wherever they appear
_SHARED = {
    "quiet": "no progress bars or progress lines (also off when not on a terminal)",
    "text_column": "CSV column holding the text (default text)",
    "label_column": "CSV column holding the label (default label, or class)",
    "json": "also write the results to this JSON file",
    "image_size": "resize images to this many pixels (default: each backbone's own size)",
    "seed": "random seed",
}
# (command, dest) -> help, where an option means something particular to its command
_PARTICULAR = {
    ("fit", "optimizer"): "optimizer of the fine-tuning strategies (default adamw, SGD with Nesterov momentum)",
    ("fit", "schedule"): "learning-rate schedule after the warm-up (default cosine)",
    ("pretrain", "lr"): "peak learning rate (default: the architecture's)",
    ("pretrain", "batch_size"): "examples per step (default: the architecture's)",
    ("extract", "data"): "built-in name, image folder, .csv or .npz",
    ("extract", "out"): "the .npz to write: X_train, y_train, X_test, y_test (as --split asks) and classes",
    ("extract", "layer"): "backbone layer to read features from (default the pooled embedding)",
    ("extract", "split"): "which part of the data to extract",
    ("extract", "test_size"): "test examples (default: the data set's own)",
}


def complete_help(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give every option of every sub-command a help text, and state its default where it has one.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``transferkit`` parser, with its sub-commands.

    Returns
    -------
    argparse.ArgumentParser
        The same parser.
    """
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    for command, sub in commands.choices.items():
        for action in sub._actions:  # noqa: SLF001
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:  # noqa: SLF001
                continue
            if action.help is None:
                action.help = _PARTICULAR.get((command, action.dest)) or _SHARED.get(action.dest)
            default = action.default
            unset = default is None or default is False or default == [] or default == argparse.SUPPRESS  # not 0
            if not unset and action.help and "default" not in action.help:
                action.help += f" (default {default})"
    return parser
