"""The pure domain: status fold, part counting, tariffs, money. No database, clock or network."""
