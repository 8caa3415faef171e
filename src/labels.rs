//! Labels that metrics, the request log and the layers above share: plain
//! enums with their label strings, at the bottom of the house so that
//! `metrics` and `telemetry` import nothing from the layers they observe.

/// Where a read's answer came from: metrics and the request log name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The in-process cache (also when another request's load filled it).
    L1,
    /// Redis.
    L2,
    /// The database.
    Db,
    /// A stale entry, served because the database was unavailable.
    Stale,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::L1, Tier::L2, Tier::Db, Tier::Stale];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::L1 => "l1",
            Tier::L2 => "l2",
            Tier::Db => "db",
            Tier::Stale => "stale",
        }
    }
}

/// Routes grouped for metrics and `Cache-Control` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteFamily {
    Article,
    Articles,
    Comments,
    Comment,
    Tags,
    User,
}

impl RouteFamily {
    pub const ALL: [RouteFamily; 6] = [
        RouteFamily::Article,
        RouteFamily::Articles,
        RouteFamily::Comments,
        RouteFamily::Comment,
        RouteFamily::Tags,
        RouteFamily::User,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteFamily::Article => "article",
            RouteFamily::Articles => "articles",
            RouteFamily::Comments => "comments",
            RouteFamily::Comment => "comment",
            RouteFamily::Tags => "tags",
            RouteFamily::User => "user",
        }
    }
}

/// Where a read ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadTarget {
    /// A replica that had applied what the read must see.
    Replica,
    /// The primary, because there is no replica (or it was asked for).
    Primary,
    /// The primary, because no replica was fit: none in rotation, none had
    /// applied the position in time, or the replica failed.
    PrimaryFallback,
}

impl ReadTarget {
    pub const ALL: [ReadTarget; 3] = [
        ReadTarget::Replica,
        ReadTarget::Primary,
        ReadTarget::PrimaryFallback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReadTarget::Replica => "replica",
            ReadTarget::Primary => "primary",
            ReadTarget::PrimaryFallback => "primary_fallback",
        }
    }
}
