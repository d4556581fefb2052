"""Static analysis of policies: what a policy's conditions can and cannot match, without any data.

:mod:`.domain` holds the value domains (intervals over numbers, finite sets for enums and booleans) and
regions of accounts built from them; :mod:`.conditions` turns conditions into regions, with an honest
"unknown" for what it does not model; :mod:`.lint` runs the checks behind ``collectrules lint``.
"""
