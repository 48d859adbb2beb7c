"""The foundation: cases and strategies, tolerances, timing, atomic files and where the data
lives (`paths`). Nothing here knows a framework."""
