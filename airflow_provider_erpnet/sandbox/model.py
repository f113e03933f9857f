"""The sandbox's entity model: entity sets, their properties and types, and the query errors.

One declarative table drives everything else: the EDMX, `$select` defaults, `$filter` typing and
the data generators all read it, so a property added here shows up consistently everywhere.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cached_property

NAMESPACE = "Erp"

DOMAIN_ERROR_TYPE = "Aloe.EnterpriseOne.Server.ServerAPI.Exceptions.EnterpriseOneServerException"
ODATA_ERROR_TYPE = "Microsoft.OData.ODataException"


class QueryError(Exception):
    """A request the Domain API refuses; carries the status and the error fields of the body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "BadRequest",
        error_type: str = ODATA_ERROR_TYPE,
        info: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.error_type = error_type
        self.info = info


def bad_request(message: str) -> QueryError:
    """400: the query cannot be parsed or names something the model does not have."""
    return QueryError(400, message)


def unsupported(message: str) -> QueryError:
    """500 domain error: what ERP.net answers for a filter feature it does not support."""
    return QueryError(
        500,
        message,
        code=DOMAIN_ERROR_TYPE,
        error_type=DOMAIN_ERROR_TYPE,
        info="Supported in $filter: eq, ge, le, and, in, contains(), startswith(), endswith().",
    )


class Kind(enum.Enum):
    """How a property is typed in EDMX and how its values look on the wire."""

    GUID = "Edm.Guid"
    STRING = "Edm.String"
    BOOLEAN = "Edm.Boolean"
    INT32 = "Edm.Int32"
    DECIMAL = "Edm.Decimal"
    DATE = "Edm.Date"
    DATETIME = "Edm.DateTimeOffset"
    AMOUNT = "Erp.Amount"
    QUANTITY = "Erp.Quantity"
    MULTILANG = "Erp.MultilanguageString"
    ENUM = "enum"
    REFERENCE = "reference"
    CHILDREN = "children"
    CUSTOM = "Erp.CustomPropertyValue"


COMPLEX_VALUE_KINDS = frozenset({Kind.AMOUNT, Kind.QUANTITY})
NAVIGATION_KINDS = frozenset({Kind.REFERENCE, Kind.CHILDREN})


@dataclass(frozen=True)
class EnumType:
    name: str
    members: tuple[tuple[str, int], ...]

    @property
    def full_name(self) -> str:
        return f"{NAMESPACE}.{self.name}"

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.members)


DOCUMENT_STATE = EnumType(
    "DocumentState",
    (
        ("New", 0),
        ("Adjustment", 5),
        ("Planned", 10),
        ("FirmPlanned", 20),
        ("Released", 30),
        ("Completed", 40),
        ("Closed", 50),
    ),
)
PARTY_TYPE = EnumType("PartyType", (("Person", 0), ("Company", 1)))
ENUM_TYPES = (DOCUMENT_STATE, PARTY_TYPE)


@dataclass(frozen=True)
class Property:
    """One property; `default` says whether it is returned when `$select` does not name it."""

    name: str
    kind: Kind
    nullable: bool = True
    default: bool = True
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    target: str | None = None  # entity set of a reference or child collection
    enum: EnumType | None = None
    filter_ops: frozenset[str] | None = None  # None: every operator the kind allows
    sortable: bool = True

    @property
    def edm_type(self) -> str:
        """The EDMX `Type` of a structural property."""
        if self.kind is Kind.ENUM:
            assert self.enum is not None
            return self.enum.full_name
        return self.kind.value


@dataclass(frozen=True)
class EntitySet:
    name: str
    type_name: str  # without namespace, e.g. "Crm_Sales_Customer"
    properties: tuple[Property, ...]
    by_name: dict[str, Property] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.properties})

    @property
    def full_type_name(self) -> str:
        return f"{NAMESPACE}.{self.type_name}"

    @cached_property
    def default_select(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.properties if p.default and p.kind is not Kind.CHILDREN)

    @cached_property
    def all_structural(self) -> tuple[str, ...]:
        """Everything `$select=*` returns: all properties and references, no child collections."""
        return tuple(p.name for p in self.properties if p.kind is not Kind.CHILDREN)

    @cached_property
    def children(self) -> tuple[Property, ...]:
        return tuple(p for p in self.properties if p.kind is Kind.CHILDREN)

    def property(self, name: str) -> Property:
        """The named property, or a 400 that names it and the entity type."""
        prop = self.by_name.get(name)
        if prop is None:
            raise bad_request(f"Could not find a property named '{name}' on type '{self.full_type_name}'.")
        return prop


_TIMESTAMP_OPS = frozenset({"ge", "le"})


def _header(display_max: int | None = None) -> tuple[Property, ...]:
    """System attributes every entity here carries (Id must be selected explicitly)."""
    return (
        Property("Id", Kind.GUID, nullable=False, default=False),
        Property("ObjectVersion", Kind.INT32, nullable=False),
        Property("DisplayText", Kind.STRING, max_length=display_max),
    )


def _tracking(*, update_time: bool = True) -> tuple[Property, ...]:
    """Creation/update stamps (filter ge/le only, not sortable) and the sync watermark."""
    stamps = (Property("CreationTime", Kind.DATETIME, filter_ops=_TIMESTAMP_OPS, sortable=False),)
    if update_time:
        stamps += (Property("UpdateTime", Kind.DATETIME, filter_ops=_TIMESTAMP_OPS, sortable=False),)
    return (*stamps, Property("AggregateLastUpdateTimeUtc", Kind.DATETIME, nullable=False, default=False))


def _ref(name: str, target: str, *, nullable: bool = True) -> Property:
    return Property(name, Kind.REFERENCE, target=target, nullable=nullable)


def _amount(name: str, *, nullable: bool = True) -> Property:
    return Property(name, Kind.AMOUNT, nullable=nullable, precision=18, scale=2)


def _lookup(name: str, type_name: str) -> EntitySet:
    """A small code list (currencies, units, ...) that the large sets reference."""
    return EntitySet(
        name,
        type_name,
        (
            *_header(),
            Property("Code", Kind.STRING, nullable=False, max_length=16),
            Property("Name", Kind.MULTILANG, nullable=False),
            Property("AggregateLastUpdateTimeUtc", Kind.DATETIME, nullable=False, default=False),
        ),
    )


CUSTOMERS = "Crm_Sales_Customers"
PRODUCTS = "General_Products_Products"
SALES_ORDERS = "Crm_Sales_SalesOrders"
SALES_ORDER_LINES = "Crm_Sales_SalesOrderLines"
PERSONS = "General_Contacts_Persons"
COMPANIES = "General_Contacts_Companies"
PARTIES = "General_Contacts_Parties"
CURRENCIES = "General_Currencies"
ENTERPRISE_COMPANIES = "General_EnterpriseCompanies"
SALES_PERSONS = "Crm_SalesPersons"
PRODUCT_GROUPS = "General_Products_ProductGroups"
MEASUREMENT_UNITS = "General_MeasurementUnits"

_ENTITY_SETS = (
    EntitySet(
        CUSTOMERS,
        "Crm_Sales_Customer",
        (
            *_header(),
            Property("Active", Kind.BOOLEAN, nullable=False),
            Property("Number", Kind.STRING, nullable=False, max_length=16),
            _amount("CreditLimit", nullable=False),
            Property("FromDate", Kind.DATE, nullable=False),
            Property("ThruDate", Kind.DATE),
            Property("GracePeriodDays", Kind.INT32),
            Property("DefaultPaymentTermDays", Kind.INT32, nullable=False),
            *_tracking(),
            Property("Turnover", Kind.DECIMAL, default=False, precision=18, scale=2),
            _ref("Party", PARTIES, nullable=False),
            _ref("EnterpriseCompany", ENTERPRISE_COMPANIES),
            _ref("DefaultCurrency", CURRENCIES),
            _ref("SalesPerson", SALES_PERSONS),
        ),
    ),
    EntitySet(
        PRODUCTS,
        "General_Products_Product",
        (
            *_header(),
            Property("PartNumber", Kind.STRING, nullable=False, max_length=32),
            Property("Name", Kind.MULTILANG, nullable=False),
            Property("ShortName", Kind.MULTILANG),
            Property("Description", Kind.MULTILANG),
            Property("Active", Kind.BOOLEAN, nullable=False),
            _amount("StandardPricePerLot"),
            Property("GrossWeight", Kind.DECIMAL, precision=18, scale=3),
            *_tracking(),
            _ref("ProductGroup", PRODUCT_GROUPS, nullable=False),
            _ref("MeasurementUnit", MEASUREMENT_UNITS, nullable=False),
        ),
    ),
    EntitySet(
        SALES_ORDERS,
        "Crm_Sales_SalesOrder",
        (
            *_header(),
            Property("DocumentNo", Kind.STRING, nullable=False, max_length=20),
            Property("DocumentDate", Kind.DATETIME, nullable=False),
            Property("State", Kind.ENUM, nullable=False, enum=DOCUMENT_STATE),
            Property("Void", Kind.BOOLEAN, nullable=False),
            Property("PaymentDueDate", Kind.DATETIME),
            Property("RequiredDeliveryDate", Kind.DATETIME),
            Property("Notes", Kind.STRING),
            *_tracking(update_time=False),
            _ref("Customer", CUSTOMERS, nullable=False),
            _ref("DocumentCurrency", CURRENCIES, nullable=False),
            Property("Lines", Kind.CHILDREN, default=False, target=SALES_ORDER_LINES),
        ),
    ),
    EntitySet(
        SALES_ORDER_LINES,
        "Crm_Sales_SalesOrderLine",
        (
            Property("Id", Kind.GUID, nullable=False, default=False),
            Property("ObjectVersion", Kind.INT32, nullable=False),
            Property("LineNo", Kind.INT32, nullable=False),
            Property("Quantity", Kind.QUANTITY, nullable=False, precision=18, scale=3),
            _amount("UnitPrice", nullable=False),
            _amount("LineAmount", nullable=False),
            Property("ProductDescription", Kind.MULTILANG),
            _ref("SalesOrder", SALES_ORDERS, nullable=False),
            _ref("Product", PRODUCTS, nullable=False),
        ),
    ),
    EntitySet(
        PERSONS,
        "General_Contacts_Person",
        (
            *_header(),
            Property("FirstName", Kind.MULTILANG, nullable=False),
            Property("LastName", Kind.MULTILANG, nullable=False),
            Property("BirthDate", Kind.DATE),
            *_tracking(),
            _ref("Party", PARTIES, nullable=False),
        ),
    ),
    EntitySet(
        COMPANIES,
        "General_Contacts_Company",
        (
            *_header(),
            Property("RegistrationNumber", Kind.STRING, max_length=32),
            Property("VATNumber", Kind.STRING, max_length=32),
            *_tracking(),
            _ref("Party", PARTIES, nullable=False),
        ),
    ),
    EntitySet(
        PARTIES,
        "General_Contacts_Party",
        (
            *_header(),
            Property("PartyName", Kind.MULTILANG, nullable=False),
            Property("PartyType", Kind.ENUM, nullable=False, enum=PARTY_TYPE),
            *_tracking(),
        ),
    ),
    _lookup(CURRENCIES, "General_Currency"),
    _lookup(ENTERPRISE_COMPANIES, "General_EnterpriseCompany"),
    _lookup(SALES_PERSONS, "Crm_SalesPerson"),
    _lookup(PRODUCT_GROUPS, "General_Products_ProductGroup"),
    _lookup(MEASUREMENT_UNITS, "General_MeasurementUnit"),
)

ENTITY_SETS: dict[str, EntitySet] = {s.name: s for s in _ENTITY_SETS}

CUSTOM_PREFIX = "CustomProperty_"


def custom_property(code: str) -> Property:
    """`CustomProperty_<code>`, as an administrator adds it: returned only when selected by name
    (or by `*`), and neither filterable nor sortable in the sandbox."""
    return Property(
        f"{CUSTOM_PREFIX}{code}", Kind.CUSTOM, default=False, filter_ops=frozenset(), sortable=False
    )


def entity_set(name: str) -> EntitySet:
    """The named entity set, or the 404 ERP.net's OData layer gives for an unknown path segment."""
    found = ENTITY_SETS.get(name)
    if found is None:
        raise QueryError(
            404,
            f"Resource not found for the segment '{name}'.",
            code="NotFound",
            error_type="Microsoft.OData.UriParser.ODataUnrecognizedPathException",
        )
    return found
