//! The compact writer: `<a><b>text</b></a>`, no declaration, no namespace, no whitespace,
//! ready to be signed.

/// Compact XML writer: `<a><b>text</b></a>`, text escaped.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }
    pub fn field(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        self.out.push_str(&quick_xml::escape::escape(text));
        self.close(name)
    }
    /// Simple elements in the order given: `(name, text)`.
    pub fn fields(&mut self, fields: &[(&str, &str)]) -> &mut Self {
        for (name, text) in fields {
            self.field(name, text);
        }
        self
    }

    /// Each of `items` as one `<item>` element, its fields written by `fields`: the list
    /// every GePG message repeats (bills, payments, reconciliation lines).
    pub fn items<T>(
        &mut self,
        item: &str,
        items: &[T],
        mut fields: impl FnMut(&mut Self, &T),
    ) -> &mut Self {
        for x in items {
            self.open(item);
            fields(self, x);
            self.close(item);
        }
        self
    }
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.out)
    }
}
