"""Entry point of the ``harbench-datasets`` distribution: registers the five real-data datasets."""

from harbench import hookimpl

from . import DATASETS


@hookimpl
def harbench_register_datasets(register):
    for dataset in DATASETS:
        register(dataset)
