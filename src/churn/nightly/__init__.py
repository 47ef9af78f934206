"""The nightly job (`churn nightly`): its steps, guards, partitions, lock and run log.

It sits above churn.stages and calls the same stage functions as the CLI, so the list
the job publishes and the one `churn export` writes come from one code path.
"""
