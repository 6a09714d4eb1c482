"""The obligation rules, one module per rule family; each rule is a pure function
``(ref, events, as_of, calendar) -> Obligation | None`` over the facts of one correlation key."""
