"""One module per page; each has `render(page, query) -> (title, body)`."""
