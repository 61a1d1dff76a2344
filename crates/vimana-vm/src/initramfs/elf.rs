//! A small, bounds-checked reader for the two things the initramfs needs
//! from ELF files: the `.modinfo` section of a kernel module and whether an
//! executable asks for a program interpreter (i.e. is dynamically linked).
//!
//! Only 64-bit little-endian ELF is understood (x86_64 and aarch64 guests).

/// `PT_INTERP`: the program header naming the dynamic loader.
const PT_INTERP: u32 = 3;
/// `SHT_NOBITS`: a section that occupies no file space (`.bss`).
const SHT_NOBITS: u32 = 8;
/// `SHN_XINDEX`: the section name table index lives elsewhere.
const SHN_XINDEX: u16 = 0xffff;

/// A parsed ELF64 LE header over borrowed file contents.
pub(crate) struct Elf<'a> {
    data: &'a [u8],
    phoff: usize,
    phentsize: usize,
    phnum: usize,
    shoff: usize,
    shentsize: usize,
    shnum: usize,
    shstrndx: usize,
}

/// Why `data` is not a static executable (`None`: it is one, a
/// `static-pie` included): not ELF64 LE, or it asks for a dynamic loader.
pub fn not_static(data: &[u8]) -> Option<&'static str> {
    match Elf::parse(data).and_then(|elf| elf.has_interpreter()) {
        Ok(false) => None,
        Ok(true) => Some("dynamically linked"),
        Err(why) => Some(why),
    }
}

fn bytes(data: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    data.get(off..off.checked_add(len)?)
}

fn u16_at(data: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes(data, off, 2)?.try_into().ok()?))
}

fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes(data, off, 4)?.try_into().ok()?))
}

fn usize_at(data: &[u8], off: usize) -> Option<usize> {
    let v = u64::from_le_bytes(bytes(data, off, 8)?.try_into().ok()?);
    usize::try_from(v).ok()
}

impl<'a> Elf<'a> {
    /// Parses the file header; the error says why the bytes are not a
    /// usable ELF64 LE file.
    pub(crate) fn parse(data: &'a [u8]) -> Result<Elf<'a>, &'static str> {
        if data.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err("not an ELF file");
        }
        if data.get(4) != Some(&2) || data.get(5) != Some(&1) {
            return Err("not a 64-bit little-endian ELF file");
        }
        let short = "truncated ELF header";
        let elf = Elf {
            data,
            phoff: usize_at(data, 0x20).ok_or(short)?,
            shoff: usize_at(data, 0x28).ok_or(short)?,
            phentsize: usize::from(u16_at(data, 0x36).ok_or(short)?),
            phnum: usize::from(u16_at(data, 0x38).ok_or(short)?),
            shentsize: usize::from(u16_at(data, 0x3a).ok_or(short)?),
            shnum: usize::from(u16_at(data, 0x3c).ok_or(short)?),
            shstrndx: usize::from(match u16_at(data, 0x3e).ok_or(short)? {
                SHN_XINDEX => return Err("extended section numbering is not supported"),
                n => n,
            }),
        };
        if elf.phnum > 0 && elf.phentsize < 56 {
            return Err("bad program header size");
        }
        if elf.shnum > 0 && elf.shentsize < 64 {
            return Err("bad section header size");
        }
        Ok(elf)
    }

    /// Whether a `PT_INTERP` program header is present (dynamic linking).
    pub(crate) fn has_interpreter(&self) -> Result<bool, &'static str> {
        for i in 0..self.phnum {
            let off = i
                .checked_mul(self.phentsize)
                .and_then(|o| o.checked_add(self.phoff))
                .ok_or("bad program header offset")?;
            let kind = u32_at(self.data, off).ok_or("truncated program headers")?;
            if kind == PT_INTERP {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// (name offset, type, file offset, size) of section `index`.
    fn section_header(&self, index: usize) -> Result<(usize, u32, usize, usize), &'static str> {
        let short = "truncated section headers";
        let off = index
            .checked_mul(self.shentsize)
            .and_then(|o| o.checked_add(self.shoff))
            .ok_or("bad section header offset")?;
        let name = u32_at(self.data, off).ok_or(short)?;
        let kind = u32_at(self.data, off + 4).ok_or(short)?;
        let offset = usize_at(self.data, off + 0x18).ok_or(short)?;
        let size = usize_at(self.data, off + 0x20).ok_or(short)?;
        let name = usize::try_from(name).map_err(|_| short)?;
        Ok((name, kind, offset, size))
    }

    /// The contents of the first section called `wanted`, if any.
    pub(crate) fn section(&self, wanted: &str) -> Result<Option<&'a [u8]>, &'static str> {
        if self.shnum == 0 {
            return Ok(None);
        }
        if self.shstrndx >= self.shnum {
            return Err("section name table index out of range");
        }
        let (_, _, str_off, str_size) = self.section_header(self.shstrndx)?;
        let names = bytes(self.data, str_off, str_size).ok_or("section name table out of file")?;
        for i in 0..self.shnum {
            let (name_off, kind, offset, size) = self.section_header(i)?;
            let Some(rest) = names.get(name_off..) else {
                return Err("section name out of range");
            };
            let name = rest.split(|b| *b == 0).next().unwrap_or_default();
            if name != wanted.as_bytes() {
                continue;
            }
            if kind == SHT_NOBITS {
                return Ok(Some(&[]));
            }
            return bytes(self.data, offset, size)
                .map(Some)
                .ok_or("section contents out of file");
        }
        Ok(None)
    }
}

/// The fields of a module's `.modinfo` that dependency resolution uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ModInfo {
    /// `name=`: the module's name (underscores), absent in old modules.
    pub name: Option<String>,
    /// `depends=`: comma-separated module names (may be empty).
    pub depends: Vec<String>,
    /// `vermagic=`: the kernel release and build flags it was built for.
    pub vermagic: Option<String>,
}

/// Parses `.modinfo` contents: NUL-separated `key=value` strings (with
/// padding NULs between them). Unknown keys are ignored.
pub(crate) fn parse_modinfo(section: &[u8]) -> ModInfo {
    let mut info = ModInfo::default();
    for raw in section.split(|b| *b == 0) {
        let Ok(text) = std::str::from_utf8(raw) else {
            continue;
        };
        let Some((key, value)) = text.split_once('=') else {
            continue;
        };
        match key {
            "name" => info.name = Some(value.to_owned()),
            "vermagic" => info.vermagic = Some(value.trim().to_owned()),
            "depends" => {
                info.depends = value
                    .split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(|d| d.replace('-', "_"))
                    .collect();
            }
            _ => {}
        }
    }
    info
}
