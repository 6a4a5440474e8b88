"""The web pages and the JSON API: one blueprint module per audience."""
