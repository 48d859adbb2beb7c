"""Records and what is made of them: report.json (`report`), md/html/junit (`render`),
`merge`, the upgrade `gate`, `expectations` (known deviations) and the `claims` ledger."""
