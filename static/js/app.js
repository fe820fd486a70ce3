// tikting's own scripts. htmx is loaded before this file.
