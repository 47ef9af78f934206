"""One function per pipeline stage: typed params and inputs in, a typed result out.

`churn <stage>` (churn.cli) parses its options, calls the stage here and logs the
result; the nightly job (churn.nightly) calls the same functions for ingest, the
scoring snapshot, scoring, the list and the report, so the two can never drift apart.
Each stage is its own module, so a DVC stage depends only on the code it runs.
"""
