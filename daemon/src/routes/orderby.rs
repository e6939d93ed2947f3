//! `?orderby=FIELD [asc|desc]` (OData style): parsing it against the fields a list can be
//! ordered by, and the name order every name-keyed list offers (contacts, JIT policies
//! and requests, data-subject requests). The daemon pages every order itself: a client
//! never sorts what it has loaded. Each order's cursors carry the order's name, so a
//! cursor of one order is refused by another (they stay opaque and tenant-bound,
//! [`super::paging`]).

use crate::error::ApiError;

/// A direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

impl Dir {
    /// `asc` or `desc`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Dir::Asc => "asc",
            Dir::Desc => "desc",
        }
    }
}

/// A field a list can be ordered by: its name in answers and errors, the spellings
/// accepted for it (lower case), and its direction when none is given.
pub(crate) struct Field {
    /// The name shown in errors (`timeGeneratedUtc`).
    pub name: &'static str,
    /// Accepted spellings, lower case (`time`, `timegeneratedutc`, …).
    pub spellings: &'static [&'static str],
    /// The direction when `?orderby=` names only the field.
    pub default_dir: Dir,
}

/// Parses `?orderby=` against `fields`: `Ok(None)` when absent, else the index of the
/// field named and the direction. Anything else (an unknown field, a direction other
/// than `asc`/`desc`, a third word) is a 400 on `orderby` naming the allowed fields.
pub(crate) fn parse(v: Option<&str>, fields: &[Field]) -> Result<Option<(usize, Dir)>, ApiError> {
    let Some(v) = v else {
        return Ok(None);
    };
    let mut words = v.split_whitespace();
    let field = words.next().unwrap_or("").to_ascii_lowercase();
    let found = fields
        .iter()
        .position(|f| f.spellings.contains(&field.as_str()));
    let dir = words.next().map(str::to_ascii_lowercase);
    let dir = match (found, dir.as_deref(), words.next()) {
        (Some(i), None, None) => Some(fields[i].default_dir),
        (Some(_), Some("asc"), None) => Some(Dir::Asc),
        (Some(_), Some("desc"), None) => Some(Dir::Desc),
        _ => None,
    };
    match (found, dir) {
        (Some(i), Some(d)) => Ok(Some((i, d))),
        _ => {
            let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
            Err(ApiError::invalid(format!(
                "orderby must be `FIELD [asc|desc]` with FIELD one of: {}; not `{v}`",
                names.join(", ")
            ))
            .with_target("orderby"))
        }
    }
}

/// The fields a name-keyed list orders by: its name (for requests, also called `id`).
const NAME: &[Field] = &[Field {
    name: "name",
    spellings: &["name", "id"],
    default_dir: Dir::Asc,
}];

/// The order of a name-keyed list: `?orderby=name asc` (the default) or `name desc`.
pub(crate) fn name_order(v: Option<&str>) -> Result<Dir, ApiError> {
    Ok(parse(v, NAME)?.map_or(Dir::Asc, |(_, d)| d))
}

/// The name cursors of `list` carry in `dir`: ascending keeps the list's own name (the
/// cursors given out before orders existed still resume), descending adds `-desc`.
pub(crate) fn cursor_list(list: &str, dir: Dir) -> String {
    match dir {
        Dir::Asc => list.to_owned(),
        Dir::Desc => format!("{list}-desc"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_order_is_name_or_id_either_way_and_anything_else_names_the_fields() {
        assert_eq!(name_order(None).unwrap(), Dir::Asc);
        assert_eq!(name_order(Some("name")).unwrap(), Dir::Asc);
        assert_eq!(name_order(Some("Name DESC")).unwrap(), Dir::Desc);
        assert_eq!(name_order(Some("id desc")).unwrap(), Dir::Desc);
        for bad in ["phone", "name sideways", "name asc desc", ""] {
            let e = name_order(Some(bad)).unwrap_err();
            let text = format!("{e:?}");
            assert!(text.contains("one of: name"), "{bad}: {text}");
            assert!(text.contains("orderby"), "{bad}: {text}");
        }
        assert_eq!(cursor_list("contacts", Dir::Asc), "contacts");
        assert_eq!(cursor_list("contacts", Dir::Desc), "contacts-desc");
    }
}
