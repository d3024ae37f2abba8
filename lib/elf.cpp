// The ELF reader: soname, needed objects and symbol versions, read with
// libelf. The input may be anything (a file an image or a site names, or a
// fuzzer's bytes): every offset and count is checked before use, every walk
// along a chain has a bound, and libelf's own failures become Error.

#include "chute/elf.hpp"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fmt/core.h>
#include <memory>

#include "chute/error.hpp"
#include "chute/fd.hpp"
#include "chute/sys.hpp"

namespace chute::elf {

namespace {

// Verneed, Vernaux and Verdef records are at least this big and never
// overlap, so a well-formed section of N bytes holds at most N / 16 of them:
// a walk that reads more is reading records that overlap, as only a
// hostile file has them, and could take quadratic time.
constexpr size_t kVersionRecord = 16;
// Without section headers, how far past the start of the version needs or
// definitions we let libelf read (real ones are a few kilobytes).
constexpr size_t kMaxVersionBytes = size_t{1} << 20;

void init_libelf() {
  static const bool ok = elf_version(EV_CURRENT) != EV_NONE;
  if (!ok) throw Error("libelf: this libelf does not support ELF version 1");
}

struct ElfEnd {
  void operator()(Elf* e) const noexcept { elf_end(e); }
};
using ElfPtr = std::unique_ptr<Elf, ElfEnd>;

// A string table as raw bytes: strings are read only when NUL-terminated
// inside it.
struct Strings {
  const char* data = nullptr;
  size_t size = 0;
};

// Where the dynamic section and the version sections are, whether they
// come from section headers or from the dynamic segment.
struct Tables {
  Elf_Data* dynamic = nullptr;
  Strings strings;
  Elf_Data* needs = nullptr;
  Elf_Data* defs = nullptr;
};

class Reader {
public:
  // SIZE: the whole file's, in bytes.
  Reader(Elf* elf, uint64_t size, std::string_view name) : elf_(elf), size_(size), name_(name) {}

  Info read() {
    Info info;
    GElf_Ehdr eh;
    if (gelf_getehdr(elf_, &eh) == nullptr) failed("can't read the ELF header");
    info.elf_class = eh.e_ident[EI_CLASS];
    info.machine = eh.e_machine;
    check_tables(eh);
    Tables t;
    if (!from_sections(t) && !from_segments(t)) return info;  // no dynamic section: static
    read_dynamic(t, info);
    if (t.needs != nullptr) read_needs(t, info);
    if (t.defs != nullptr) read_defs(t, info);
    return info;
  }

private:
  // Throws "NAME: corrupt ELF: WHAT".
  [[noreturn]] void corrupt(std::string_view what) const {
    throw Error(fmt::format("{}: corrupt ELF: {}", name_, what));
  }

  // The same after a libelf call failed, with libelf's reason.
  [[noreturn]] void failed(std::string_view what) const {
    const int e = elf_errno();
    if (e == 0) corrupt(what);
    corrupt(fmt::format("{}: {}", what, elf_errmsg(e)));
  }

  // libelf quietly clips header tables that run past the end of the
  // file: a library cut short must be an error, not a shorter list of needs.
  void check_tables(const GElf_Ehdr& eh) const {
    const bool wide = eh.e_ident[EI_CLASS] == ELFCLASS64;
    uint64_t sections = eh.e_shnum, segments = eh.e_phnum;
    if (eh.e_shoff != 0 && (sections == 0 || segments == PN_XNUM)) {
      // Extended numbering: the real counts are in section header 0.
      Elf_Scn* zero = elf_getscn(elf_, 0);
      GElf_Shdr sh;
      if (zero == nullptr || gelf_getshdr(zero, &sh) == nullptr) failed("can't read section header 0");
      if (sections == 0) sections = sh.sh_size;
      if (segments == PN_XNUM) segments = sh.sh_info;
    }
    within(eh.e_shoff, sections, eh.e_shentsize, wide ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr),
           "section header table");
    within(eh.e_phoff, segments, eh.e_phentsize, wide ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr),
           "program header table");
  }

  void within(uint64_t offset, uint64_t count, uint64_t entry, uint64_t expected,
              std::string_view what) const {
    if (count == 0) return;
    if (entry != expected)
      corrupt(fmt::format("{}: entries of {} bytes, not {}", what, entry, expected));
    if (offset > size_ || count > (size_ - offset) / entry)
      corrupt(fmt::format("{} runs past the end of the file ({} bytes)", what, size_));
  }

  std::string string_at(const Strings& s, uint64_t offset, std::string_view what) const {
    if (s.data == nullptr || offset >= s.size)
      corrupt(fmt::format("{}: string offset {} outside the string table ({} bytes)", what,
                         offset, s.size));
    const char* start = s.data + offset;
    const void* nul = std::memchr(start, '\0', s.size - offset);
    if (nul == nullptr) corrupt(fmt::format("{}: string at offset {} is not terminated", what, offset));
    return std::string(start, static_cast<const char*>(nul));
  }

  // The string table section number LINK, which a dynamic or version
  // section names in sh_link.
  Strings section_strings(size_t link, std::string_view what) const {
    Elf_Scn* scn = elf_getscn(elf_, link);
    GElf_Shdr sh;
    if (scn == nullptr || gelf_getshdr(scn, &sh) == nullptr)
      failed(fmt::format("{}: no string table section {}", what, link));
    if (sh.sh_type != SHT_STRTAB)
      corrupt(fmt::format("{}: section {} is not a string table", what, link));
    Elf_Data* d = elf_getdata(scn, nullptr);
    if (d == nullptr) failed(fmt::format("{}: can't read string table section {}", what, link));
    if (d->d_buf == nullptr && d->d_size != 0)
      corrupt(fmt::format("{}: string table section {} has no contents", what, link));
    return {static_cast<const char*>(d->d_buf), d->d_size};
  }

  Elf_Data* section_data(Elf_Scn* scn, std::string_view what) const {
    Elf_Data* d = elf_getdata(scn, nullptr);
    if (d == nullptr) failed(fmt::format("can't read the {} section", what));
    if (d->d_buf == nullptr && d->d_size != 0)
      corrupt(fmt::format("the {} section has no contents", what));
    return d;
  }

  // The usual way: .dynamic, .gnu.version_r and .gnu.version_d, each with
  // its string table in sh_link. False when there is no dynamic section.
  bool from_sections(Tables& t) {
    size_t count = 0;
    if (elf_getshdrnum(elf_, &count) != 0) failed("can't count the section headers");
    Elf_Scn* dynamic = nullptr;
    size_t dynamic_link = 0, needs_link = 0, defs_link = 0;
    Elf_Scn* needs = nullptr;
    Elf_Scn* defs = nullptr;
    Elf_Scn* scn = nullptr;
    for (size_t i = 0; i < count && (scn = elf_nextscn(elf_, scn)) != nullptr; ++i) {
      GElf_Shdr sh;
      if (gelf_getshdr(scn, &sh) == nullptr) failed(fmt::format("can't read section header {}", i + 1));
      if (sh.sh_type == SHT_DYNAMIC && dynamic == nullptr) {
        dynamic = scn;
        dynamic_link = sh.sh_link;
      } else if (sh.sh_type == SHT_GNU_verneed && needs == nullptr) {
        needs = scn;
        needs_link = sh.sh_link;
      } else if (sh.sh_type == SHT_GNU_verdef && defs == nullptr) {
        defs = scn;
        defs_link = sh.sh_link;
      }
    }
    if (dynamic == nullptr) return false;
    t.dynamic = section_data(dynamic, "dynamic");
    t.strings = section_strings(dynamic_link, "dynamic section");
    // The version sections name the same string table in practice; read
    // each one's own all the same, as the format says.
    if (needs != nullptr) {
      t.needs = section_data(needs, "version needs");
      needs_strings_ = needs_link == dynamic_link ? t.strings
                                                  : section_strings(needs_link, "version needs");
    }
    if (defs != nullptr) {
      t.defs = section_data(defs, "version definitions");
      defs_strings_ = defs_link == dynamic_link ? t.strings
                                                : section_strings(defs_link, "version definitions");
    }
    return true;
  }

  // The file offset of virtual address ADDR and how many file bytes follow
  // it in its loadable segment.
  std::pair<uint64_t, uint64_t> locate(uint64_t addr, std::string_view what) const {
    for (const GElf_Phdr& p : loads_) {
      if (addr >= p.p_vaddr && addr - p.p_vaddr < p.p_filesz) {
        const uint64_t into = addr - p.p_vaddr;
        if (p.p_offset > UINT64_MAX - into)
          corrupt(fmt::format("{}: segment offset overflows", what));
        return {p.p_offset + into, p.p_filesz - into};
      }
    }
    corrupt(fmt::format("{}: address {:#x} is in no loadable segment", what, addr));
  }

  Elf_Data* chunk(uint64_t offset, uint64_t size, Elf_Type type, std::string_view what) const {
    if (offset > static_cast<uint64_t>(INT64_MAX) || size > SIZE_MAX)
      corrupt(fmt::format("{}: offset or size out of range", what));
    Elf_Data* d = elf_getdata_rawchunk(elf_, static_cast<int64_t>(offset), size, type);
    if (d == nullptr) failed(fmt::format("can't read the {}", what));
    if (d->d_buf == nullptr && d->d_size != 0) corrupt(fmt::format("the {} has no contents", what));
    return d;
  }

  // Objects whose section headers were stripped: what the dynamic linker
  // itself reads, the dynamic segment and the addresses in it. False when
  // there is no dynamic segment either.
  bool from_segments(Tables& t) {
    size_t count = 0;
    if (elf_getphdrnum(elf_, &count) != 0) failed("can't count the program headers");
    std::optional<GElf_Phdr> dynamic;
    for (size_t i = 0; i < count; ++i) {
      GElf_Phdr p;
      if (i > INT_MAX || gelf_getphdr(elf_, static_cast<int>(i), &p) == nullptr)
        failed(fmt::format("can't read program header {}", i));
      if (p.p_type == PT_LOAD) loads_.push_back(p);
      if (p.p_type == PT_DYNAMIC && !dynamic) dynamic = p;
    }
    if (!dynamic) return false;
    t.dynamic = chunk(dynamic->p_offset, dynamic->p_filesz, ELF_T_DYN, "dynamic segment");

    std::optional<uint64_t> strtab, strsz, verneed, verdef;
    const size_t entries = t.dynamic->d_size / dynamic_entry_size();
    for (size_t i = 0; i < entries; ++i) {
      GElf_Dyn dyn;
      if (i > INT_MAX || gelf_getdyn(t.dynamic, static_cast<int>(i), &dyn) == nullptr)
        failed(fmt::format("can't read dynamic entry {}", i));
      if (dyn.d_tag == DT_NULL) break;
      if (dyn.d_tag == DT_STRTAB) strtab = dyn.d_un.d_ptr;
      if (dyn.d_tag == DT_STRSZ) strsz = dyn.d_un.d_val;
      if (dyn.d_tag == DT_VERNEED) verneed = dyn.d_un.d_ptr;
      if (dyn.d_tag == DT_VERDEF) verdef = dyn.d_un.d_ptr;
    }
    if (strtab) {
      if (!strsz) corrupt("dynamic segment: DT_STRTAB without DT_STRSZ");
      auto [offset, avail] = locate(*strtab, "dynamic string table");
      if (*strsz > avail) corrupt("dynamic string table: DT_STRSZ runs past its segment");
      Elf_Data* d = chunk(offset, *strsz, ELF_T_BYTE, "dynamic string table");
      t.strings = {static_cast<const char*>(d->d_buf), d->d_size};
    }
    if (verneed) {
      auto [offset, avail] = locate(*verneed, "version needs");
      t.needs = chunk(offset, std::min<uint64_t>(avail, kMaxVersionBytes), ELF_T_VNEED,
                      "version needs");
    }
    if (verdef) {
      auto [offset, avail] = locate(*verdef, "version definitions");
      t.defs = chunk(offset, std::min<uint64_t>(avail, kMaxVersionBytes), ELF_T_VDEF,
                     "version definitions");
    }
    needs_strings_ = defs_strings_ = t.strings;
    return true;
  }

  size_t dynamic_entry_size() const {
    const size_t size = gelf_fsize(elf_, ELF_T_DYN, 1, EV_CURRENT);
    if (size == 0) failed("unknown dynamic entry size");
    return size;
  }

  void read_dynamic(const Tables& t, Info& info) const {
    const size_t entries = t.dynamic->d_size / dynamic_entry_size();
    for (size_t i = 0; i < entries; ++i) {
      GElf_Dyn dyn;
      if (i > INT_MAX || gelf_getdyn(t.dynamic, static_cast<int>(i), &dyn) == nullptr)
        failed(fmt::format("can't read dynamic entry {}", i));
      if (dyn.d_tag == DT_NULL) break;
      if (dyn.d_tag == DT_NEEDED)
        info.needed.push_back(string_at(t.strings, dyn.d_un.d_val, "DT_NEEDED"));
      else if (dyn.d_tag == DT_SONAME)
        // The dynamic linker keeps the last one; so do we.
        info.soname = string_at(t.strings, dyn.d_un.d_val, "DT_SONAME");
    }
  }

  // An offset into a version section, checked so that libelf's int
  // offsets cannot wrap.
  int version_offset(uint64_t offset, const Elf_Data* d, std::string_view what) const {
    if (offset > d->d_size || offset > INT_MAX)
      corrupt(fmt::format("{}: offset {} outside the section ({} bytes)", what, offset, d->d_size));
    return static_cast<int>(offset);
  }

  // Follows the chains as the dynamic linker does: to the first zero
  // vn_next / vna_next, whatever vn_cnt says.
  void read_needs(const Tables& t, Info& info) const {
    const size_t budget = t.needs->d_size / kVersionRecord;
    size_t records = 0;
    uint64_t offset = 0;
    for (;;) {
      if (++records > budget) corrupt("version needs: more records than fit (a loop?)");
      GElf_Verneed vn;
      if (gelf_getverneed(t.needs, version_offset(offset, t.needs, "version needs"), &vn) == nullptr)
        failed(fmt::format("version needs: can't read the entry at offset {}", offset));
      VersionNeed need;
      need.file = string_at(needs_strings_, vn.vn_file, "version needs");
      uint64_t aux = offset + vn.vn_aux;
      for (unsigned i = 0; i < vn.vn_cnt; ++i) {
        if (++records > budget) corrupt("version needs: more records than fit (a loop?)");
        GElf_Vernaux vna;
        if (gelf_getvernaux(t.needs, version_offset(aux, t.needs, "version needs"), &vna) == nullptr)
          failed(fmt::format("version needs: can't read the version at offset {}", aux));
        // A weak need that is not met only makes the dynamic linker warn.
        if ((vna.vna_flags & VER_FLG_WEAK) == 0)
          need.versions.push_back(string_at(needs_strings_, vna.vna_name, "version needs"));
        if (vna.vna_next == 0) break;
        aux += vna.vna_next;
      }
      info.version_needs.push_back(std::move(need));
      if (vn.vn_next == 0) break;
      offset += vn.vn_next;
    }
  }

  void read_defs(const Tables& t, Info& info) const {
    const size_t budget = t.defs->d_size / kVersionRecord;
    size_t records = 0;
    uint64_t offset = 0;
    for (;;) {
      if (++records > budget) corrupt("version definitions: more records than fit (a loop?)");
      GElf_Verdef vd;
      if (gelf_getverdef(t.defs, version_offset(offset, t.defs, "version definitions"), &vd) == nullptr)
        failed(fmt::format("version definitions: can't read the entry at offset {}", offset));
      // The first auxiliary entry names the version; the others name its
      // parents, which are defined by entries of their own.
      if (vd.vd_cnt == 0)
        corrupt(fmt::format("version definitions: the entry at offset {} has no name", offset));
      const uint64_t aux = offset + vd.vd_aux;
      GElf_Verdaux vda;
      if (gelf_getverdaux(t.defs, version_offset(aux, t.defs, "version definitions"), &vda) == nullptr)
        failed(fmt::format("version definitions: can't read the name at offset {}", aux));
      std::string name = string_at(defs_strings_, vda.vda_name, "version definitions");
      // The base entry is the object's own name, not a version.
      if ((vd.vd_flags & VER_FLG_BASE) == 0) info.version_defs.push_back(std::move(name));
      if (vd.vd_next == 0) break;
      offset += vd.vd_next;
    }
  }

  Elf* elf_;
  uint64_t size_;
  std::string_view name_;
  std::vector<GElf_Phdr> loads_;
  Strings needs_strings_;
  Strings defs_strings_;
};

bool has_magic(std::string_view head) {
  return head.size() >= SELFMAG && std::memcmp(head.data(), ELFMAG, SELFMAG) == 0;
}

// The ELF file of SIZE bytes is open as E (or failed to open, when null); MAGIC says whether the
// bytes at least begin like ELF, to tell "not ELF" from "broken ELF".
Info read_opened(Elf* e, uint64_t size, bool magic, std::string_view name) {
  if (e == nullptr || elf_kind(e) != ELF_K_ELF) {
    if (!magic) throw Error(fmt::format("{}: not an ELF file", name));
    const int err = elf_errno();
    throw Error(fmt::format("{}: corrupt ELF: {}", name,
                            err != 0 ? elf_errmsg(err) : "invalid identification bytes"));
  }
  return Reader(e, size, name).read();
}

}  // namespace

Info read(int fd, std::string_view name) {
  init_libelf();
  const struct stat st = sys::fstat(fd, name);
  if (!S_ISREG(st.st_mode)) throw Error(fmt::format("{}: not an ELF file (not a regular file)", name));
  char head[SELFMAG];
  ssize_t n;
  do n = ::pread(fd, head, sizeof head, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    const int e = errno;
    throw SysError(e, fmt::format("can't read: {}", name));
  }
  const bool magic = has_magic(std::string_view(head, static_cast<size_t>(n)));
  if (!magic) throw Error(fmt::format("{}: not an ELF file", name));
  (void)elf_errno();  // clear any error left by an earlier call
  // ELF_C_READ reads only the headers and sections asked for, with pread:
  // no mapping of a large library that a truncation could turn into SIGBUS.
  ElfPtr e(elf_begin(fd, ELF_C_READ, nullptr));
  return read_opened(e.get(), static_cast<uint64_t>(st.st_size), magic, name);
}

Info read_file(const std::string& path) {
  // O_NONBLOCK: a FIFO in place of a library must not hang the open.
  Fd fd = sys::open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  return read(fd.get(), path);
}

Info read_memory(std::string_view bytes, std::string_view name) {
  init_libelf();
  if (!has_magic(bytes)) throw Error(fmt::format("{}: not an ELF file", name));
  // libelf may convert byte order in place and wants aligned data: give it
  // its own copy (new[] aligns to at least 16).
  std::unique_ptr<char[]> copy(new char[bytes.size()]);
  std::memcpy(copy.get(), bytes.data(), bytes.size());
  (void)elf_errno();
  ElfPtr e(elf_memory(copy.get(), bytes.size()));
  return read_opened(e.get(), bytes.size(), true, name);
}

}  // namespace chute::elf
