"""Write a local .env for `make run`: production settings (DEBUG off), plain http on 127.0.0.1, a fresh key."""

import secrets

print(
    "\n".join(
        [
            "# Written by `make run` on first use. Edit freely; see .env.example for every variable.",
            "DJANGO_DEBUG=false",
            f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}",
            "DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost",
            "# plain http on loopback: no HTTPS redirect, no secure-only cookies",
            "DJANGO_HTTPS=false",
        ]
    )
)
