"""Small helpers: config printing, environment report, info subsets, class frequencies."""
