"""`churn serve`: a small local web page over the latest retention list, for marketing.

It sits beside the CLI at the top of the import order (ARCHITECTURE.md) and adds no
logic of its own to the list: the filters, the marketing view, the CSV/XLSX writers,
the report and the campaign read-out are the ones `churn export`, `churn report` and
`churn outcomes` use, so what the page shows and what the commands write cannot differ.
"""
