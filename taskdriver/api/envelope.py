"""The envelopes around every answer: `{success, data[, pagination]}` and the error body."""

from __future__ import annotations

from marshmallow import Schema, fields


class PaginationSchema(Schema):
    total = fields.Int()
    limit = fields.Int()
    offset = fields.Int()


class ValidationDetailSchema(Schema):
    field = fields.Str()
    message = fields.Str()
    value = fields.Raw(allow_none=True)


class ErrorSchema(Schema):
    """The error envelope every status >= 400 carries."""

    success = fields.Bool(dump_default=False)
    error = fields.Str()
    timestamp = fields.Str()
    correlation_id = fields.Str(data_key="correlationId")
    validation_details = fields.List(fields.Nested(ValidationDetailSchema),
                                     data_key="validationDetails")


_ENVELOPES: dict[tuple[str, bool, bool], type[Schema]] = {}


def envelope(schema: type[Schema], many: bool = False, paginated: bool = False
             ) -> type[Schema]:
    """The success envelope `{success, data[, pagination]}` around a schema.

    One class per (schema, many, paginated), named after it (`TaskListPageEnvelope`), so
    the OpenAPI document names each envelope once however many routes answer with it.
    """
    key = (schema.__name__, many, paginated)
    if key not in _ENVELOPES:
        members: dict[str, fields.Field] = {
            "success": fields.Bool(dump_default=True),
            "data": fields.Nested(schema, many=many, allow_none=True),
            "error": fields.Str(metadata={"description": "Only when success is false"}),
        }
        if paginated:
            members["pagination"] = fields.Nested(PaginationSchema)
        base = schema.__name__.removesuffix("Schema")
        name = f"{base}{'List' if many else ''}{'Page' if paginated else ''}Envelope"
        _ENVELOPES[key] = Schema.from_dict(members, name=name)
    return _ENVELOPES[key]
