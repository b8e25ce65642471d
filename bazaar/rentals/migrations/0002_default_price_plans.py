"""Create the three price plans with Koko's prices (editable afterwards in the admin and API)."""

from decimal import Decimal

from django.db import migrations

PLANS = {
    "regular": dict(
        daily_rate="1.50",
        intro_days=2,
        intro_rate="1.00",
        minimum_charge="2.00",
        minimum_below_days=None,
        loan_days=14,
        fine_per_day="0.25",
        fine_grace_days=1,
        fine_cap="5.00",
    ),
    "fiction": dict(
        daily_rate="3.00",
        intro_days=0,
        intro_rate="0.00",
        minimum_charge="0.00",
        minimum_below_days=None,
        loan_days=7,
        fine_per_day="0.50",
        fine_grace_days=1,
        fine_cap="10.00",
    ),
    "novel": dict(
        daily_rate="1.50",
        intro_days=0,
        intro_rate="0.00",
        minimum_charge="4.50",
        minimum_below_days=3,
        loan_days=14,
        fine_per_day="0.25",
        fine_grace_days=1,
        fine_cap="5.00",
    ),
}
MONEY = {"daily_rate", "intro_rate", "minimum_charge", "fine_per_day", "fine_cap"}


def create(apps, schema_editor):
    PricePlan = apps.get_model("rentals", "PricePlan")
    for kind, values in PLANS.items():
        fields = {k: (Decimal(v) if k in MONEY and v is not None else v) for k, v in values.items()}
        PricePlan.objects.get_or_create(kind=kind, defaults=fields)


class Migration(migrations.Migration):
    dependencies = [("rentals", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
