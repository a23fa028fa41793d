//! Views: model values to text and JSON.
