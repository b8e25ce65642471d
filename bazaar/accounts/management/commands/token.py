"""``bazaar token create USERNAME [--name N]`` / ``bazaar token revoke USERNAME ID`` / ``bazaar token list USERNAME``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bazaar.accounts import selectors, services
from bazaar.accounts.models import User
from bazaar.core.errors import DomainError


class Command(BaseCommand):
    help = "Create, list or revoke API tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a token; the secret is printed once.")
        create.add_argument("username")
        create.add_argument("--name", default="cli")
        lst = sub.add_parser("list", help="List a user's tokens.")
        lst.add_argument("username")
        revoke = sub.add_parser("revoke", help="Revoke a token by id.")
        revoke.add_argument("username")
        revoke.add_argument("token_id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        try:
            if options["action"] == "create":
                issued = services.token_create(user=user, name=options["name"])
                self.stdout.write(issued.secret)
                self.stderr.write(f"token id {issued.token.pk}; shown once, store it now.")
            elif options["action"] == "list":
                for t in selectors.token_list(user=user):
                    state = "revoked" if t.revoked_at else "active"
                    self.stdout.write(
                        f"{t.pk}\t{t.name}\t{t.prefix}…\t{state}\t{t.created_at:%Y-%m-%d %H:%M}"
                    )
            else:
                services.token_revoke(user=user, token_id=options["token_id"])
                self.stdout.write(f"revoked {options['token_id']}")
        except DomainError as exc:
            raise CommandError(exc.message)
