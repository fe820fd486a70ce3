"""Register pages: `register` (list, board, matrix, forms) and `item` (the item page and its actions)."""
