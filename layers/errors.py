"""Domain errors: each carries a machine code and a message in Chinese and English."""

from __future__ import annotations


class CitygridError(Exception):
    """Base of every error a user can cause or meet; never shown as a traceback."""

    code = "citygrid_error"

    def __init__(
        self, message_en: str, message_zh: str, code: str | None = None, **details: object
    ) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_zh = message_zh
        if code is not None:
            self.code = code
        self.details = details

    def __str__(self) -> str:
        return f"{self.message_zh} / {self.message_en}"


class SetupError(CitygridError):
    """The machine lacks something the project needs (PostgreSQL, PostGIS, permissions)."""

    code = "setup_error"


class ConfigError(SetupError):
    """The configuration file is missing, unreadable, or names settings that do not exist."""

    code = "config_error"


class DatabaseUnreachable(CitygridError):
    """The configured database cannot be reached or refuses the connection."""

    code = "database_unreachable"


class PostgisMissing(CitygridError):
    """The database server has no PostGIS extension available."""

    code = "postgis_missing"


class DataFileError(CitygridError):
    """A reference data file (boundary, code table) is missing or corrupt."""

    code = "data_file_error"


class MigrationError(CitygridError):
    """The database refused a schema migration (often: no right to create PostGIS)."""

    code = "migration_failed"


class UnplacedTable(CitygridError):
    """A table without a place in a distributed deployment, or a distributed one whose rows may
    lack their county."""

    code = "table_unplaced"


class UnknownLayer(CitygridError):
    """A layer id that the registry does not know."""

    code = "unknown_collection"


class BadQuery(CitygridError):
    """A query parameter that cannot be used as given."""

    code = "invalid_parameter"


class FeatureNotFound(CitygridError):
    """No feature with that id in the collection."""

    code = "feature_not_found"


class InvalidFeature(CitygridError):
    """A submitted feature (geometry or properties) that cannot be stored as it is."""

    code = "invalid_feature"


class InvalidValue(CitygridError):
    """A field value that its declaration refuses (type, code list, format, bounds, required);
    the code says which, the same whether it came in a query, a body, a file or a filter."""

    code = "invalid_value"


class OutsideEveryCounty(InvalidFeature):
    """A row that lies in none of the deployment's counties."""

    code = "outside_every_county"


class PayloadTooLarge(CitygridError):
    """A request body over the configured size limit."""

    code = "payload_too_large"


class UnsupportedMediaType(CitygridError):
    """A body that is not (Geo)JSON."""

    code = "unsupported_media_type"


class PreconditionRequired(CitygridError):
    """A change sent without If-Match."""

    code = "precondition_required"


class PreconditionFailed(CitygridError):
    """A change whose If-Match names a version that is no longer current."""

    code = "precondition_failed"


class GridRuleBroken(CitygridError):
    """A grid change whose result would no longer tile the parent; details carry the report."""

    code = "grid_rules_broken"


class GridEditRefused(CitygridError):
    """A grid operation that cannot be made as asked (a line that does not cut, grids not adjacent)."""

    code = "grid_edit_refused"


class NotSignedIn(CitygridError):
    """No credentials, or credentials that are expired, forged or no longer valid."""

    code = "not_signed_in"


class Forbidden(CitygridError):
    """A signed-in user asking for what their role or patrol area does not allow."""

    code = "forbidden"


class CsrfFailed(Forbidden):
    """A cookie-authenticated write that did not come from the application's own pages."""

    code = "csrf_failed"


class TooManyAttempts(CitygridError):
    """Sign-in refused for a while after repeated failures; details carry the wait in seconds."""

    code = "too_many_attempts"


class TooManyStreams(CitygridError):
    """More live streams than a process or an account may keep open."""

    code = "too_many_streams"


class AccountError(CitygridError):
    """An account that cannot be created or changed as asked (taken name, unknown role)."""

    code = "account_error"


class StateConflict(CitygridError):
    """An action that the record's current state does not allow (a case not awaiting its check)."""

    code = "state_conflict"


class ConcurrentChange(CitygridError):
    """A change that lost a race: what it was about changed or went away while it was being made."""

    code = "concurrent_change"


class LengthRequired(CitygridError):
    """An upload sent without Content-Length, whose size cannot be checked before it is read."""

    code = "length_required"


class BackupError(CitygridError):
    """A backup that cannot be made, read or restored as asked (damaged, or a target not empty)."""

    code = "backup_error"


class QueryTimeout(CitygridError):
    """A statement ran longer than the time its kind of request is given, and was cancelled."""

    code = "query_timeout"
