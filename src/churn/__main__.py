"""`python -m churn` is the same as the `churn` command."""

from churn.cli import main

main()
