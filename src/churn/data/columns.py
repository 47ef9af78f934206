"""Which source column feeds each canonical field.

An explicit name in params wins (matched exactly, else ignoring case, spaces and
punctuation, because exports drift: ``Customer ID`` today, ``CustomerID`` next
month). Unset fields are recognised from the names real shop, ERP and warehouse
exports use. When a required field is still missing the error lists the columns
that were found and the params key to set, so the user can fix it in one edit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from churn.errors import UserError

# Normalised names (lower case, letters and digits only), most specific first.
TRANSACTION_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "customerid",
        "customerno",
        "customernumber",
        "customercode",
        "custid",
        "clientid",
        "accountid",
        "memberid",
        "userid",
        "customer",
    ),
    "timestamp": (
        "invoicedate",
        "orderdate",
        "transactiondate",
        "purchasedate",
        "invoicedatetime",
        "orderdatetime",
        "timestamp",
        "datetime",
        "createdat",
        "date",
        "ts",
    ),
    "amount": (
        "amount",
        "revenue",
        "linetotal",
        "totalamount",
        "totalprice",
        "ordertotal",
        "sales",
        "netsales",
        "total",
        "value",
    ),
    "order_id": (
        "invoice",
        "invoiceno",
        "invoicenumber",
        "invoiceid",
        "orderid",
        "orderno",
        "ordernumber",
        "transactionid",
        "receiptid",
    ),
    "quantity": ("quantity", "qty", "units", "unitssold"),
    "unit_price": ("unitprice", "price", "itemprice", "priceeach", "unitcost"),
    "product_id": ("stockcode", "productid", "productcode", "sku", "itemid", "itemcode"),
    "country": ("country", "countrycode", "customercountry", "billingcountry"),
    "channel": ("channel", "saleschannel", "orderchannel"),
}

CUSTOMER_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": TRANSACTION_ALIASES["customer_id"] + ("id",),
    "email": ("email", "emailaddress", "mail"),
    "name": ("name", "fullname", "customername"),
    "country": ("country", "countrycode"),
    "marketing_consent": (
        "marketingconsent",
        "consent",
        "emailconsent",
        "optin",
        "marketingoptin",
        "acceptsmarketing",
        "newsletter",
    ),
}


def normalise(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def resolve_columns(
    found: Sequence[str],
    requested: Mapping[str, str | None],
    aliases: Mapping[str, tuple[str, ...]],
    params_key: str,
) -> dict[str, str | None]:
    """Map each canonical field to a found column (or None); explicit names must exist."""
    by_norm: dict[str, str] = {}
    for name in found:
        by_norm.setdefault(normalise(name), name)
    resolved: dict[str, str | None] = {}
    for field, wanted in requested.items():
        if wanted is None:
            continue
        column: str | None = wanted if wanted in found else by_norm.get(normalise(wanted))
        if column is None:
            raise UserError(
                f"column {wanted!r} for {field} not found; columns are: {shown(found)}"
                f" (set {params_key}.{field})"
            )
        resolved[field] = column
    used = set(resolved.values())
    for field in requested:
        if field in resolved:
            continue
        match = next(
            (by_norm[a] for a in aliases.get(field, ()) if a in by_norm and by_norm[a] not in used),
            None,
        )
        resolved[field] = match
        if match is not None:
            used.add(match)
    return resolved


def shown(found: Sequence[str], limit: int = 30) -> str:
    """The found columns for an error line, capped so a 500-column export stays one line.

    A header cell can hold a quoted line break; it is shown escaped, or the
    "one clear line" would split in two.
    """
    names = ", ".join(
        name.encode("unicode_escape").decode("ascii") if not name.isprintable() else name
        for name in found[:limit]
    )
    return names + (f", ... ({len(found)} in all)" if len(found) > limit else "")


def require(resolved: Mapping[str, str | None], found: Sequence[str], params_key: str) -> None:
    """A transaction needs a customer, a time and an amount (or quantity and unit price)."""
    for field, label in (("customer_id", "customer id"), ("timestamp", "timestamp")):
        if resolved.get(field) is None:
            raise UserError(
                f"no {label} column recognised; columns are: {shown(found)}"
                f" (set {params_key}.{field})"
            )
    has_amount = resolved.get("amount") is not None
    has_parts = resolved.get("quantity") is not None and resolved.get("unit_price") is not None
    if not (has_amount or has_parts):
        raise UserError(
            f"no amount column (nor quantity and unit price) recognised; columns are:"
            f" {shown(found)} (set {params_key}.amount, or {params_key}.quantity and"
            f" {params_key}.unit_price)"
        )
