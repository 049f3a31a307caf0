"""The matrix's rules, one module per group of categories; each module exports its `RULES` tuple."""
