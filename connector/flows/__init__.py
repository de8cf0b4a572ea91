"""The sync flows, one module each: inbound, follow-ups out, intake out."""
