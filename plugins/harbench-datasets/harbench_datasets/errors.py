"""The two ways a real dataset can be wrong: a folder that does not match the layout, and defective records."""

from __future__ import annotations


class LayoutError(ValueError):
    """A missing or malformed dataset folder. The message is one line that names the expected layout, because the
    core prints it as is next to the suite field that caused it."""

    def __init__(self, dataset: str, problem: str, layout: str):
        self.dataset = dataset
        self.problem = problem
        self.layout = layout
        message = f"{dataset}: {problem}; expected layout: {layout}"
        super().__init__(" ".join(message.split()))


class MalformedRecordsWarning(UserWarning):
    """Records were skipped while parsing (real files have known defects); the message says how many."""


class OutsideFolderWarning(UserWarning):
    """A data file is a symbolic link that leads outside the dataset folder the user named."""
