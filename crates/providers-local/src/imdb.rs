//! IMDb CSV exports: the ratings export (`Const, Your Rating, Date Rated, Title, …`) and
//! list/watchlist exports (`Position, Const, Created, …, Your Rating, Date Rated`).
//!
//! Columns are matched by header name (trimmed, case-insensitively), in any order, extra
//! columns ignored. Required: `Const`, `Title`, `Title Type`, and `Your Rating` for a ratings
//! export and for the ratings feature. A row that cannot be read is an error naming the file,
//! line and column — never skipped.
//!
//! - `Const` → `ids.imdb` (must be a title id, `tt<digits>`; a list of people, `nm…`, is refused);
//! - `Title Type` → the item type ([`item_type`]);
//! - `Year` → `year`; `Title` → `title`;
//! - ratings feature only: `Your Rating` → `rating` (1–10), `Date Rated` (`YYYY-MM-DD`) →
//!   `rated_at` (`YYYY-MM-DDT00:00:00Z`). In a list export an empty `Your Rating` means the
//!   title is not rated, and the row is not part of the ratings inventory.

use std::path::Path;

use pal::inventory::{Feature, InventoryItem, ItemType};

use crate::file::FileError;

/// Which IMDb export a CSV file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvKind {
    /// The ratings export (no `Position` column, a `Your Rating` column).
    Ratings,
    /// A list or watchlist export (a `Position` column).
    List,
}

impl CsvKind {
    /// The feature the export holds unless configured otherwise.
    pub fn default_feature(self) -> Feature {
        match self {
            CsvKind::Ratings => Feature::Ratings,
            CsvKind::List => Feature::Watchlist,
        }
    }
}

/// A parsed export.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// Which export.
    pub kind: CsvKind,
    /// The feature its items are for.
    pub feature: Feature,
    /// The items, in file order.
    pub items: Vec<InventoryItem>,
}

/// The item type of an IMDb `Title Type`, in the export's camel case (`tvSeries`) or its
/// display form (`TV Series`); `None` when unknown.
///
/// Types without an item type of their own — shorts, TV movies and specials, videos, music
/// videos, video games — are movies: the target resolves them by their IMDb id or reports them
/// unresolved. An empty type is a movie (the contract's default).
///
/// ```
/// use pal::inventory::ItemType;
/// use providers_local::imdb::item_type;
/// assert_eq!(item_type("tvMiniSeries"), Some(ItemType::Show));
/// assert_eq!(item_type("TV Episode"), Some(ItemType::Episode));
/// assert_eq!(item_type("short"), Some(ItemType::Movie));
/// assert_eq!(item_type("podcast"), None);
/// ```
pub fn item_type(title_type: &str) -> Option<ItemType> {
    let squashed: String = title_type.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    match squashed.as_str() {
        "" | "movie" | "feature" | "tvmovie" | "short" | "tvshort" | "video" | "tvspecial" | "musicvideo"
        | "videogame" => Some(ItemType::Movie),
        "tvseries" | "tvminiseries" | "podcastseries" => Some(ItemType::Show),
        "tvepisode" | "podcastepisode" => Some(ItemType::Episode),
        _ => None,
    }
}

/// The columns the parser uses, by index.
struct Columns {
    constant: usize,
    title: usize,
    title_type: usize,
    year: Option<usize>,
    rating: Option<usize>,
    date_rated: Option<usize>,
}

fn csv_error(path: &Path, error: &csv::Error) -> FileError {
    let line = error.position().map(csv::Position::line);
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields, but the header has {expected_len}")
        }
        _ => error.to_string(),
    };
    FileError::at(path, line, None, None, message)
}

/// Parses an IMDb export (`text` without its BOM) for `feature` (default: the export's own).
pub fn parse(path: &Path, text: &str, feature: Option<Feature>) -> Result<Export, FileError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| csv_error(path, &e))?.clone();
    let find = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let kind = if find("Position").is_some() {
        CsvKind::List
    } else if find("Your Rating").is_some() {
        CsvKind::Ratings
    } else {
        let message = "not an IMDb export: no `Position` column (list export) and no `Your Rating` column \
                       (ratings export)";
        return Err(FileError::at(path, Some(1), None, None, message));
    };
    let feature = feature.unwrap_or(kind.default_feature());
    let require = |name: &str| {
        find(name).ok_or_else(|| FileError::at(path, Some(1), None, Some(name), "missing required column"))
    };
    let columns = Columns {
        constant: require("Const")?,
        title: require("Title")?,
        title_type: require("Title Type")?,
        year: find("Year"),
        rating: if feature == Feature::Ratings { Some(require("Your Rating")?) } else { None },
        date_rated: find("Date Rated"),
    };

    let mut items = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, &e))?;
        let line = record.position().map(csv::Position::line);
        let get = |index: usize| record.get(index).unwrap_or_default().trim();
        let bad = |field: &str, message: String| FileError::at(path, line, None, Some(field), message);

        let constant = get(columns.constant);
        let digits = constant.get(2..).unwrap_or_default();
        let is_title_id = constant.len() > 2
            && constant.get(..2).is_some_and(|prefix| prefix.eq_ignore_ascii_case("tt"))
            && digits.bytes().all(|b| b.is_ascii_digit());
        if !is_title_id {
            let message = if constant.is_empty() {
                "empty: every row needs an IMDb title id (tt…)".to_owned()
            } else {
                format!("`{constant}` is not an IMDb title id (tt…)")
            };
            return Err(bad("Const", message));
        }
        let title_type = get(columns.title_type);
        let item_type = item_type(title_type).ok_or_else(|| {
            bad("Title Type", format!("unknown title type `{title_type}` (known: movie, tvSeries, tvMiniSeries, tvEpisode, short, tvMovie, tvSpecial, video, …)"))
        })?;
        let year = match columns.year.map(get).filter(|y| !y.is_empty()) {
            None => None,
            Some(year) => Some(year.parse::<i32>().map_err(|_| bad("Year", format!("`{year}` is not a year")))?),
        };
        let title = Some(get(columns.title)).filter(|t| !t.is_empty()).map(str::to_owned);
        let mut item = InventoryItem {
            item_type,
            title,
            year,
            ids: [("imdb".to_owned(), constant.to_ascii_lowercase())].into(),
            ..InventoryItem::default()
        };
        if let Some(rating_column) = columns.rating {
            let rating = get(rating_column);
            if rating.is_empty() {
                if kind == CsvKind::List {
                    // Not rated: not part of the ratings inventory.
                    continue;
                }
                return Err(bad("Your Rating", "empty: every row of a ratings export has a rating".to_owned()));
            }
            item.rating = Some(
                rating
                    .parse::<u8>()
                    .ok()
                    .filter(|r| (1..=10).contains(r))
                    .ok_or_else(|| bad("Your Rating", format!("`{rating}` is not a rating from 1 to 10")))?,
            );
            if let Some(date) = columns.date_rated.map(get).filter(|d| !d.is_empty()) {
                item.rated_at = Some(
                    rated_at(date).ok_or_else(|| bad("Date Rated", format!("`{date}` is not a date (YYYY-MM-DD)")))?,
                );
            }
        }
        items.push(item);
    }
    Ok(Export { kind, feature, items })
}

/// `YYYY-MM-DD` → `YYYY-MM-DDT00:00:00Z`, for a real calendar date.
fn rated_at(date: &str) -> Option<String> {
    let mut parts = date.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let (year, month, day) = (year.parse::<i32>().ok()?, month.parse::<u8>().ok()?, day.parse::<u8>().ok()?);
    let date = time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    Some(format!("{:04}-{:02}-{:02}T00:00:00Z", date.year(), u8::from(date.month()), date.day()))
}
