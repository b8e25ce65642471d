"""Demo data for rentals (idempotent): called by `bazaar demo`.

50 titles of each kind with copies, a 'desk' staff user, customers, and open, overdue and closed rentals.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import Permission
from django.utils import timezone

from bazaar.accounts.models import User
from bazaar.rentals import services
from bazaar.rentals.models import Copy, CopyState, Customer, Kind, Payment, Rental, Title

DESK = ("desk", "rentals-desk-2026")
#: A patron who signs in to their own account (card linked to this user), printed with the other demo logins.
READER = ("reader", "rentals-reader-2026")
READER_CARD = ("Asha Kamau", "asha@example.com", "+254 700 000 042")

BOOKS = [
    ("The Hobbit", "J. R. R. Tolkien", Kind.NOVEL),
    ("The Lord of the Rings", "J. R. R. Tolkien", Kind.NOVEL),
    ("Things Fall Apart", "Chinua Achebe", Kind.NOVEL),
    ("Half of a Yellow Sun", "Chimamanda Ngozi Adichie", Kind.NOVEL),
    ("Petals of Blood", "Ngũgĩ wa Thiong'o", Kind.NOVEL),
    ("The River Between", "Ngũgĩ wa Thiong'o", Kind.NOVEL),
    ("Pride and Prejudice", "Jane Austen", Kind.NOVEL),
    ("Middlemarch", "George Eliot", Kind.NOVEL),
    ("One Hundred Years of Solitude", "Gabriel García Márquez", Kind.NOVEL),
    ("Beloved", "Toni Morrison", Kind.NOVEL),
    ("Dune", "Frank Herbert", Kind.FICTION),
    ("Foundation", "Isaac Asimov", Kind.FICTION),
    ("The Left Hand of Darkness", "Ursula K. Le Guin", Kind.FICTION),
    ("A Wizard of Earthsea", "Ursula K. Le Guin", Kind.FICTION),
    ("Neuromancer", "William Gibson", Kind.FICTION),
    ("Kindred", "Octavia E. Butler", Kind.FICTION),
    ("Parable of the Sower", "Octavia E. Butler", Kind.FICTION),
    ("The Dispossessed", "Ursula K. Le Guin", Kind.FICTION),
    ("Solaris", "Stanisław Lem", Kind.FICTION),
    ("Hyperion", "Dan Simmons", Kind.FICTION),
    ("The Structure and Interpretation of Computer Programs", "Harold Abelson", Kind.REGULAR),
    ("The Pragmatic Programmer", "Andrew Hunt", Kind.REGULAR),
    ("Designing Data-Intensive Applications", "Martin Kleppmann", Kind.REGULAR),
    ("A Brief History of Time", "Stephen Hawking", Kind.REGULAR),
    ("Sapiens", "Yuval Noah Harari", Kind.REGULAR),
    ("The Selfish Gene", "Richard Dawkins", Kind.REGULAR),
    ("Cosmos", "Carl Sagan", Kind.REGULAR),
    ("Long Walk to Freedom", "Nelson Mandela", Kind.REGULAR),
    ("Unbowed", "Wangari Maathai", Kind.REGULAR),
    ("The Art of Computer Programming", "Donald Knuth", Kind.REGULAR),
]
KINDS = [Kind.REGULAR, Kind.FICTION, Kind.NOVEL]
CUSTOMERS = [
    ("Amina Wanjiru", "amina@example.com", "+254 700 000 001"),
    ("Brian Otieno", "brian@example.com", "+254 700 000 002"),
    ("Chloé Martin", "chloe@example.com", "+33 6 00 00 00 03"),
    ("David Kim", "david@example.com", ""),
    ("Esther Njeri", "esther@example.com", "+254 700 000 005"),
    ("Farid Haddad", "", "+961 70 000 006"),
]
MARKER_EMAIL = "amina@example.com"


def _isbn13(n: int) -> str:
    body = f"978{n:09d}"
    check = (10 - sum((1 if i % 2 == 0 else 3) * int(c) for i, c in enumerate(body)) % 10) % 10
    return body + str(check)


def _titles() -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = list(BOOKS)
    i = 0
    while len(out) < 50:
        kind = KINDS[i % 3]
        out.append((f"Desk Reader Volume {i + 1}", f"Bazaar Press {chr(65 + i % 26)}", kind))
        i += 1
    return out


def load() -> list[str]:
    """Create the demo data if missing; return lines to print (URLs, logins)."""
    desk = User.objects.filter(username=DESK[0]).first()
    if desk is None:
        desk = User(username=DESK[0], email="desk@bazaar.local", is_staff=True)
        desk.set_password(DESK[1])
        desk.save()
    # Staff without permissions gets a 404 from /admin/rentals/, the admin link the catalogue shows the desk.
    desk.user_permissions.add(*Permission.objects.filter(content_type__app_label="rentals"))
    for n, (name, author, kind) in enumerate(_titles()):
        if not Title.objects.filter(title=name, author=author).exists():
            title = services.title_create(
                title=name,
                author=author,
                kind=kind,
                isbn=_isbn13(100000 + n),
                description=f"A {kind} title from the demo catalogue.",
            )
            # Printed barcodes a clerk can type at the desk (and screenshots that do not change run to run).
            services.copies_add(
                title_id=title.pk, barcodes=[f"DEMO-{n + 1:03d}-{i}" for i in range(1, 3 + n % 3)]
            )
    if not Customer.objects.filter(email=MARKER_EMAIL).exists():
        _rentals(desk)
    _reader()
    return [
        "Rentals catalogue (public): http://127.0.0.1:8000/rentals/   JSON: http://127.0.0.1:8000/api/rentals/titles",
        f"Rentals desk (staff): http://127.0.0.1:8000/rentals/desk/   login {DESK[0]} / {DESK[1]}   "
        f"API token: bazaar token create {DESK[0]}   copy barcodes DEMO-001-1 ...",
        f"Rentals patron account: http://127.0.0.1:8000/rentals/account/   login {READER[0]} / {READER[1]}   "
        f"(card of {READER_CARD[0]})",
        "Rentals CLI: bazaar rentals overdue | bazaar rentals rent --customer 1 --title 1 | bazaar rentals export",
    ]


def _reader() -> None:
    """The demo patron: a library card (no loans) linked to a user account that is not staff."""
    user = User.objects.filter(username=READER[0]).first()
    if user is None:
        user = User(username=READER[0], email=READER_CARD[1])
        user.set_password(READER[1])
        user.save()
    card = Customer.objects.filter(email=READER_CARD[1]).first()
    if card is None:
        card = services.customer_create(name=READER_CARD[0], email=READER_CARD[1], phone=READER_CARD[2])
    if card.user_id != user.pk:
        services.customer_link_user(customer_id=card.pk, user=user)


def _rentals(desk: User) -> None:
    customers = [services.customer_create(name=n, email=e, phone=p) for n, e, p in CUSTOMERS]
    blocked = services.customer_create(name="Gustav Blocked", email="gustav@example.com", status="blocked")
    del blocked
    now = timezone.now()
    titles = list(Title.objects.order_by("id")[:12])

    def lend(customer: Customer, title: Title, days_ago: int, loan_days: int) -> Rental:
        copy = Copy.objects.filter(title=title, state=CopyState.AVAILABLE).order_by("id").first()
        assert copy is not None
        terms = services.plan_terms(title.kind)
        rented = now - timedelta(days=days_ago, hours=2)
        rental = Rental.objects.create(
            customer=customer,
            copy=copy,
            title=title,
            rented_at=rented,
            due_at=rented + timedelta(days=loan_days),
            terms=terms.to_json(),
            rented_by=desk,
        )
        Copy.objects.filter(pk=copy.pk).update(state=CopyState.RENTED)
        return rental

    # Closed rentals (Koko's table in practice), then open, due tomorrow and overdue ones.
    for i, (days, back) in enumerate([(1, 1), (3, 3), (5, 5), (4, 4), (20, 20), (2, 2)]):
        r = lend(customers[i % 5], titles[i], days_ago=days + 10, loan_days=14)
        services.rental_return(
            rental_id=r.pk, returned_at=r.rented_at + timedelta(days=back, hours=1), by=desk
        )
    lend(customers[0], titles[6], days_ago=2, loan_days=14)
    lend(customers[1], titles[7], days_ago=13, loan_days=14)  # due tomorrow
    lend(customers[2], titles[8], days_ago=20, loan_days=14)  # overdue
    lend(customers[3], titles[9], days_ago=30, loan_days=7)  # long overdue
    lend(customers[5], titles[10], days_ago=9, loan_days=7)  # overdue, no e-mail
    Payment.objects.create(
        customer=customers[0], amount="2.00", note="cash", received_at=now, received_by=desk
    )
