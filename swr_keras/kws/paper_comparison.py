"""The paper's Table 1 as data, and the README block that shows ours beside it.

`tables.table1_vs_paper_markdown` renders the comparison; this module holds
what it compares against and replaces the README's generated block, so the
README's numbers come from a command and never from a hand-typed copy.
"""

import os

from swr_keras import atomic_io

# Table 1 of the paper (KWS transfer, top-1 test accuracy in %, mean (95 % CI
# half-width); #Param. of one backbone with 2 tasks, #Mult. per task), as
# transcribed in shared/reference/paper-tables.md from shared/paper/swr-paper.txt.
# Keyed by our backbone tag, then by (row name, target cost); the rows the
# paper lacks (fine-tune classifier, Keras LoRA) are absent on purpose.
# Values: (GSC2, MC-KWS, #Param., #Mult.).
PAPER_TABLE1 = {
    "bc_resnet8": {
        ("multilingual", None): ("95.7 (1.6)", "99.3 (0.4)", "1x", "1x"),
        ("finetune_all", None): ("98.5 (0.1)", "99.8 (0.2)", "3x", "1x"),
        ("spottune", None): ("98.2 (0.3)", "99.7 (0.4)", "4.02x", "1.79x"),
        ("adapter", None): ("98.3 (0.2)", "99.7 (0.2)", "1.43x", "1.53x"),
        ("repnet", None): ("97.9 (0.5)", "99.7 (0.2)", "2.26x", "2.15x"),
        ("taps", None): ("98.2 (0.2)", "99.7 (0.1)", "2.06x", "1x"),
        ("swr", 0.1): ("98.4 (0.2)", "99.7 (0.0)", "1.09x", "1x"),
        ("swr", 0.3): ("98.5 (0.1)", "99.8 (0.2)", "1.33x", "1x"),
        ("swr", 0.5): ("98.5 (0.1)", "99.9 (0.1)", "2.04x", "1x"),
    },
    "res15": {
        ("multilingual", None): ("95.4 (0.8)", "96.2 (2.4)", "1x", "1x"),
        ("finetune_all", None): ("97.7 (0.2)", "99.2 (0.2)", "3x", "1x"),
        ("spottune", None): ("96.3 (0.3)", "94.6 (1.3)", "4.08x", "1.54x"),
        ("adapter", None): ("97.5 (0.1)", "98.7 (0.5)", "1.22x", "1.03x"),
        ("repnet", None): ("97.5 (0.2)", "98.7 (0.2)", "1.86x", "1.43x"),
        ("taps", None): ("97.4 (0.2)", "98.6 (0.1)", "2.00x", "1x"),
        ("swr", 0.1): ("97.6 (0.1)", "99.0 (0.5)", "1.08x", "1x"),
        ("swr", 0.3): ("97.6 (0.2)", "99.3 (0.3)", "1.54x", "1x"),
        ("swr", 0.5): ("97.7 (0.1)", "99.3 (0.4)", "2.00x", "1x"),
    },
}
NOT_IN_PAPER = ("-", "-", "-", "-")
BEGIN = "<!-- table1-vs-paper:begin -->"
END = "<!-- table1-vs-paper:end -->"


def has_paper_numbers(backbone):
    """Whether the paper reports Table 1 for `backbone` (`bc_resnet8`, `res15`)."""
    return backbone in PAPER_TABLE1


def paper_row(backbone, row, cost):
    """`(GSC2, MC-KWS, #Param., #Mult.)` as printed in the paper; `"-"` each where it has none."""
    cost = None if cost is None else round(float(cost), 4)
    return PAPER_TABLE1.get(backbone, {}).get((row, cost), NOT_IN_PAPER)


def replace_block(text, block, name="the file"):
    """`text` with everything between the two markers replaced by `block`.

    The markers themselves and every byte outside them are kept, so
    replacing again with the same block changes nothing.

    Args:
        text: the file's text, holding `BEGIN` and then `END` once each.
        block: the new content, a newline-terminated Markdown text.
        name: the file's name, for the error message.

    Raises:
        ValueError: a marker is missing, repeated or out of order.
    """
    counts = (text.count(BEGIN), text.count(END))
    if counts != (1, 1) or text.index(BEGIN) > text.index(END):
        raise ValueError(
            f"{name} needs one '{BEGIN}' line followed by one '{END}' line where the "
            f"generated Table 1 goes; add them. Received: {counts[0]} begin and {counts[1]} "
            "end markers" + (", end first" if counts == (1, 1) else "")
        )
    start = text.index(BEGIN) + len(BEGIN)
    return text[:start] + "\n" + block + text[text.index(END) :]


def read_block_file(path):
    """The text of `path`, checked for the markers; raises a one-line ValueError."""
    try:
        with open(path, encoding="utf-8", newline="") as file:
            text = file.read()
    except OSError as error:
        raise ValueError(
            f"{path} cannot be read ({error.strerror}); name a Markdown file holding the "
            f"'{BEGIN}' and '{END}' lines."
        ) from None
    replace_block(text, "", path)
    return text


def write_block(path, block):
    """Replaces the generated block of `path` with `block`, atomically; the rest is kept."""
    text = read_block_file(path)
    updated = replace_block(text, block, path)
    if updated != text:
        mode = os.stat(path).st_mode
        atomic_io.write_text_atomically(path, updated)
        os.chmod(path, mode)  # the temporary file's 0600 would otherwise replace README's mode
