"""The book's page kit: what a notebook page needs around the pipeline.

`page` (setup, data and weights lines, downloads), `glue` (numbers into prose, read back and
restated), `format` (numbers, labels, tables), `ranking` (distinct models and ties), `words` and
`teach` (sentences chosen by the numbers). Notebooks import from these; the library proper
(`tad.*`) never imports from here.
"""
