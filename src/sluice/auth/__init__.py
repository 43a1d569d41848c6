"""Who may do what: principals, roles, API tokens and users."""
