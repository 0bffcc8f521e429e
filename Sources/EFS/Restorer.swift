// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSArchive
import EFSCore
import EFSSystem
import SystemPackage

/// The extraction of ``EFSBackup/restore(from:into:issues:progress:)``.
///
/// Safety: every entry lands below the destination. Paths are checked first (no absolute path, no `..`); then the
/// parent directories are opened one component at a time from the destination with `O_DIRECTORY | O_NOFOLLOW`, so
/// an existing symbolic link (one the archive made earlier, or one already there) is never followed, and the entry
/// is created relative to the directory so opened. A leaf that is a symbolic link is removed and replaced, never
/// written through. Raw imports go through ``RawContext/openForImport(in:name:path:flags:durability:)`` with the
/// parent so opened: they too resolve no path.
final class Restorer {
    let input: ArchiveInput
    let root: FileDescriptor
    let rootPath: FilePath
    let issues: (EFSBackup.Issue) -> Void
    let progress: (EFSBackup.Progress) -> Void
    var summary = EFSBackup.Summary()
    let isRoot = Sys.effectiveUserID == 0
    /// Directories whose mode and times are set at the end, after their children (deepest first).
    var deferred: [(components: [String], mode: UInt32, access: ArchiveTime, modification: ArchiveTime)] = []
    /// The parent directory opened last: consecutive entries usually share it.
    var cached: (components: [String], fd: FileDescriptor)?
    /// A directory the archive creates, made under a temporary name and not yet renamed into place: that happens
    /// when the next entry is not its raw stream, or just after that stream is imported into it, so that an
    /// encrypted directory never appears without its marker (files put into it before the marker would be plain).
    var pending: (parent: [String], name: String, temporary: String, path: String)?
    /// Content bytes written at a time.
    static let chunk = 1 << 20
    static let progressInterval: UInt64 = 4 << 20

    init(input: ArchiveInput, root: FileDescriptor, rootPath: FilePath, issues: @escaping (EFSBackup.Issue) -> Void,
         progress: @escaping (EFSBackup.Progress) -> Void) {
        self.input = input
        self.root = root
        self.rootPath = rootPath
        self.issues = issues
        self.progress = progress
    }

    deinit { if let c = cached { Sys.close(c.fd) } }

    func report(_ path: String, _ error: EFSError, warning: Bool) {
        if warning {
            summary.warnings += 1
        } else {
            summary.failures += 1
            summary.lastFailure = error
        }
        issues(EFSBackup.Issue(path: path, error: error, isWarning: warning))
    }

    func tick(_ path: String) {
        progress(EFSBackup.Progress(entries: summary.entries, bytes: input.offset, path: path))
    }

    // MARK: - Run

    func run() throws(EFSError) -> EFSBackup.Summary {
        defer {
            publishPendingDirectory()
            finishDirectories()
        }
        while let entry = try input.next() {
            do {
                try restore(entry)
                summary.entries += 1
                if entry.efsRaw != nil { summary.rawStreams += 1 }
            } catch {
                // A truncated or unreadable archive ends the restore; anything else fails this entry only. Content
                // the entry did not take is skipped by the reader.
                if let fatal = input.failure { throw fatal }
                report(entry.path, error, warning: false)
            }
            tick(entry.path)
        }
        summary.bytes = input.offset
        return summary
    }

    /// The components of an archive path below the destination.
    ///
    /// - Throws: ``EFSError/Code/accessDenied`` for an absolute path or a `..` component.
    static func components(_ path: String) throws(EFSError) -> [String] {
        guard !path.hasPrefix("/") else {
            throw EFSError(.accessDenied, "refusing an absolute path: entries must stay below the destination")
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
        guard !parts.contains("..") else {
            throw EFSError(.accessDenied, "refusing a path with a '..' component: entries must stay below the destination")
        }
        return parts
    }

    /// The components of a member's path, after every check that does not need the file system: the path stays
    /// below the destination, and only an encrypted directory's raw stream may be named `.efs-dir` (a plain file
    /// of that name would mark its directory as encrypted).
    static func check(_ entry: ArchiveEntry) throws(EFSError) -> [String] {
        let parts = try components(entry.path)
        if parts.last == DirectoryMarker.name, entry.efsRaw != .directory {
            throw EFSError(.accessDenied, "refusing a member named \(DirectoryMarker.name) that is not an encrypted directory's stream")
        }
        if entry.kind == .hardLink { _ = try components(entry.linkTarget ?? "") }
        return parts
    }

    func restore(_ entry: ArchiveEntry) throws(EFSError) {
        let parts: [String]
        do { parts = try Self.check(entry) } catch {
            publishPendingDirectory()
            throw error
        }
        if entry.efsRaw == .directory {
            let dirParts = Array(parts.dropLast())
            if let p = pending, p.parent + [p.name] == dirParts {
                // The raw stream of the directory just made: the marker goes in before the directory is in place.
                defer { publishPendingDirectory() }
                try restoreEncryptedDirectory(entry, dirParts, temporary: p.parent + [p.temporary])
                return
            }
            publishPendingDirectory()
            try restoreEncryptedDirectory(entry, dirParts)
            return
        }
        publishPendingDirectory()
        guard let name = parts.last else {
            guard entry.kind == .directory else { throw EFSError(.invalidArgument, "only a directory can stand for the destination itself") }
            try directoryAttributes(root, entry, parts)
            return
        }
        if TemporaryName.isTemporary(name), entry.kind != .directory {
            report(entry.path, EFSError(.invalidArgument, "a swift-efs temporary file: not restored"), warning: true)
            return
        }
        if entry.kind == .characterDevice || entry.kind == .blockDevice {
            report(entry.path, EFSError(.notSupported, "device nodes are not restored"), warning: true)
            return
        }
        let parent = try directory(Array(parts.dropLast()), create: true)
        switch entry.kind {
        case .directory: try restoreDirectory(entry, parent, name, parts)
        case .regular:
            if entry.efsRaw == .file {
                try restoreEncryptedFile(entry, parent, name, parts)
            } else {
                try restorePlainFile(entry, parent, name)
            }
        case .symbolicLink:
            try replace(parent, name, "cannot create the symbolic link") { temporary throws(Errno) in
                try Sys.symlinkat(entry.linkTarget ?? "", parent, temporary)
                if isRoot { try? Sys.lchownat(parent, temporary, uid: entry.uid, gid: entry.gid) }
                try Sys.lutimensat(parent, temporary, access: Sys.time(entry.accessTime ?? entry.modificationTime), modification: Sys.time(entry.modificationTime))
            }
        case .hardLink:
            try restoreHardLink(entry, parent, name)
        case .fifo:
            try replace(parent, name, "cannot create the FIFO") { temporary throws(Errno) in
                try Sys.mkfifoat(parent, temporary, mode: 0o600)
                let fd = try Sys.openat(parent, temporary, [.readOnly, .nonBlocking, .noFollow])
                defer { Sys.close(fd) }
                try attributes(fd, entry, raw: false)
            }
        case .characterDevice, .blockDevice:
            break
        }
    }

    // MARK: - Directories

    /// Opens the directory `components` below the destination without following any symbolic link, creating
    /// missing ones when `create`. The descriptor stays owned by the cache (do not close it).
    func directory(_ components: [String], create: Bool) throws(EFSError) -> FileDescriptor {
        if let c = cached, c.components == components { return c.fd }
        let fd = try open(components, create: create)
        if let c = cached { Sys.close(c.fd) }
        cached = (components, fd)
        return fd
    }

    /// Opens a directory below the destination, one component at a time with `O_NOFOLLOW`. The caller closes it.
    func open(_ components: [String], create: Bool) throws(EFSError) -> FileDescriptor {
        var current: FileDescriptor
        do { current = try Sys.openat(root, ".", [.readOnly, .directory]) } catch {
            throw EFSError.system(error, "cannot open the destination", rootPath)
        }
        for (i, c) in components.enumerated() {
            let next: FileDescriptor
            do throws(Errno) {
                do { next = try Sys.openat(current, c, [.readOnly, .directory, .noFollow]) } catch where error == .noSuchFileOrDirectory && create {
                    do { try Sys.mkdirat(current, c, mode: 0o777) } catch where error == .fileExists {}
                    next = try Sys.openat(current, c, [.readOnly, .directory, .noFollow])
                }
            } catch {
                Sys.close(current)
                let shown = components[0...i].joined(separator: "/")
                if error == .tooManySymbolicLinkLevels || error == .notDirectory {
                    let what = (try? Sys.lstatat(root, shown))?.kind == .symlink ? "a symbolic link" : "not a directory"
                    throw EFSError(.accessDenied, "refusing to go through '\(shown)': it is \(what) (it could lead outside the destination)")
                }
                throw EFSError.system(error, "cannot open the directory '\(shown)'")
            }
            Sys.close(current)
            current = next
        }
        return current
    }

    func restoreDirectory(_ entry: ArchiveEntry, _ parent: FileDescriptor, _ name: String, _ parts: [String]) throws(EFSError) {
        let existing = try? Sys.lstatat(parent, name)
        // A new directory is made under a temporary name and renamed into place by publishPendingDirectory(), which
        // also replaces a non-directory in the way.
        let made = existing?.kind == .directory ? name : TemporaryName.name(for: name)
        if made != name {
            // Owner-only while its children are restored; the archived mode is set at the end.
            do { try Sys.mkdirat(parent, made, mode: 0o700) } catch { throw EFSError.system(error, "cannot create the directory") }
        }
        let fd: FileDescriptor
        do { fd = try Sys.openat(parent, made, [.readOnly, .directory, .noFollow]) } catch {
            if made != name { try? Sys.unlinkat(parent, made, directory: true) }
            throw EFSError.system(error, "cannot open the directory")
        }
        defer { Sys.close(fd) }
        if made != name { pending = (Array(parts.dropLast()), name, made, entry.path) }
        try directoryAttributes(fd, entry, parts)
    }

    /// Renames the directory made last under a temporary name into place. If that fails (something took its name
    /// meanwhile), the failure is reported and the temporary directory (empty, or holding only its marker) removed.
    func publishPendingDirectory() {
        guard let p = pending else { return }
        pending = nil
        do throws(EFSError) {
            let parent = try directory(p.parent, create: false)
            do throws(Errno) {
                if let st = try? Sys.lstatat(parent, p.name), st.kind != .directory {
                    // A file or link in the way: swap the two names, then remove it under the temporary name, so a
                    // crash leaves one of them at the name. Without RENAME_EXCHANGE it is removed first.
                    do {
                        try Sys.renameat2(parent, p.temporary, parent, p.name, flags: .exchange)
                        try? Sys.unlinkat(parent, p.temporary)
                        return
                    } catch where error == .invalidArgument || error == .noFunction || error == .notSupported {
                        try Sys.unlinkat(parent, p.name)
                    }
                }
                try Sys.renameat(parent, p.temporary, parent, p.name)
            } catch {
                if let dir = try? Sys.openat(parent, p.temporary, [.readOnly, .directory, .noFollow]) {
                    try? Sys.unlinkat(dir, DirectoryMarker.name)
                    Sys.close(dir)
                }
                try? Sys.unlinkat(parent, p.temporary, directory: true)
                throw EFSError.system(error, "cannot create the directory")
            }
        } catch {
            report(p.path, error, warning: false)
        }
    }

    /// Extended attributes and owner now; mode and times once the children are in.
    func directoryAttributes(_ fd: FileDescriptor, _ entry: ArchiveEntry, _ parts: [String]) throws(EFSError) {
        setExtendedAttributes(fd, entry, raw: false)
        if isRoot {
            do { try Sys.fchown(fd, uid: entry.uid, gid: entry.gid) } catch {
                report(entry.path, EFSError.system(error, "cannot restore the owner"), warning: true)
            }
        }
        deferred.append((parts, mode(entry), entry.accessTime ?? entry.modificationTime, entry.modificationTime))
    }

    /// Sets the directories' modes and times, deepest first (a child's creation changes its parent's times).
    func finishDirectories() {
        for d in deferred.reversed() {
            do throws(EFSError) {
                let fd = try open(d.components, create: false)
                defer { Sys.close(fd) }
                try mapErrors(nil, "cannot restore the mode and times") {
                    try Sys.fchmod(fd, d.mode)
                    try Sys.futimens(fd, access: Sys.time(d.access), modification: Sys.time(d.modification))
                }
            } catch {
                report(d.components.isEmpty ? "." : d.components.joined(separator: "/"), error, warning: true)
            }
        }
        deferred.removeAll()
    }

    /// Imports a directory's raw stream as its marker; into `temporary` (the components of the directory as made,
    /// before it is renamed into place) when given.
    func restoreEncryptedDirectory(_ entry: ArchiveEntry, _ dirParts: [String], temporary: [String]? = nil) throws(EFSError) {
        let dirParts = temporary ?? dirParts
        let dir = try directory(dirParts, create: true)
        if let m = try? Sys.lstatat(dir, DirectoryMarker.name), m.kind != .regular { try clear(dir, DirectoryMarker.name) }
        let path = dirParts.reduce(rootPath) { $0.appending($1) }
        let flags: RawFlags = [.createForImport, .createForDirectory, .overwriteHidden]
        let ctx: RawContext
        if let name = dirParts.last {
            let parent = try open(Array(dirParts.dropLast()), create: false)
            defer { Sys.close(parent) }
            ctx = try RawContext.openForImport(in: parent, name: name, path: path, flags: flags, durability: .deferredToCaller)
        } else {
            // The destination itself: the path the user gave, resolved once like every other destination.
            ctx = try RawContext.open(rootPath, flags: flags, durability: .deferredToCaller)
        }
        defer { ctx.close() }
        try ctx.write { max in try self.content(max, entry.path) }
        if isRoot { try? Sys.lchownat(dir, DirectoryMarker.name, uid: entry.uid, gid: entry.gid) }
    }

    // MARK: - Files

    /// Makes an object under a temporary name beside `name` (`make` gets that name), then renames it over whatever
    /// non-directory object is at `name`: a crash leaves the old object or the new one with all its attributes,
    /// never neither (the temporary name is litter `efs fsck --repair` removes).
    func replace(_ parent: FileDescriptor, _ name: String, _ what: String, _ make: (String) throws(Errno) -> Void) throws(EFSError) {
        try refuseDirectory(parent, name)
        let temporary = TemporaryName.name(for: name)
        do throws(Errno) {
            try make(temporary)
            try Sys.renameat(parent, temporary, parent, name)
        } catch {
            try? Sys.unlinkat(parent, temporary)
            throw EFSError.system(error, what)
        }
    }

    /// A file, link or FIFO entry never replaces a directory (it may hold what the archive restored below it).
    func refuseDirectory(_ parent: FileDescriptor, _ name: String) throws(EFSError) {
        if let st = try? Sys.lstatat(parent, name), st.kind == .directory { throw EFSError(.alreadyExists, "a directory is in the way") }
    }

    /// Removes whatever non-directory object is at `name`, so a new one can take its place (never written through).
    func clear(_ parent: FileDescriptor, _ name: String) throws(EFSError) {
        guard let st = try? Sys.lstatat(parent, name) else { return }
        guard st.kind != .directory else { throw EFSError(.alreadyExists, "a directory is in the way") }
        do { try Sys.unlinkat(parent, name) } catch { throw EFSError.system(error, "cannot replace the existing file") }
    }

    func content(_ maximum: Int, _ path: String) throws(EFSError) -> [UInt8] {
        let before = input.offset
        let chunk = try input.readContent(maximum: maximum)
        if before / UInt64(Self.progressInterval) != input.offset / UInt64(Self.progressInterval) { tick(path) }
        return chunk
    }

    /// Writes the content to a temporary file beside the target and renames it into place: a failed entry leaves
    /// nothing behind, and an existing file or link is replaced, not written through.
    func restorePlainFile(_ entry: ArchiveEntry, _ parent: FileDescriptor, _ name: String) throws(EFSError) {
        try refuseDirectory(parent, name)
        let temporary = TemporaryName.name(for: name)
        let fd: FileDescriptor
        do { fd = try Sys.openat(parent, temporary, [.writeOnly, .create, .exclusive, .noFollow], mode: [.ownerReadWrite]) } catch {
            throw EFSError.system(error, "cannot create")
        }
        var done = false
        defer {
            if !done {
                Sys.close(fd)
                try? Sys.unlinkat(parent, temporary)
            }
        }
        while true {
            let chunk = try content(Self.chunk, entry.path)
            if chunk.isEmpty { break }
            do { try Sys.writeAll(fd, chunk) } catch { throw EFSError.system(error, "cannot write") }
        }
        do throws(Errno) {
            try attributes(fd, entry, raw: false)
            try Sys.renameat(parent, temporary, parent, name)
        } catch {
            throw EFSError.system(error, "cannot create")
        }
        done = true
        Sys.close(fd)
    }

    func restoreEncryptedFile(_ entry: ArchiveEntry, _ parent: FileDescriptor, _ name: String, _ parts: [String]) throws(EFSError) {
        try refuseDirectory(parent, name)
        let path = parts.reduce(rootPath) { $0.appending($1) }
        // Relative to the parent opened component by component without following links: no path is resolved
        // again, so a directory swapped for a symbolic link meanwhile cannot redirect the import.
        let ctx = try RawContext.openForImport(in: parent, name: name, path: path, flags: [.createForImport, .overwriteHidden],
                                               durability: .deferredToCaller, replacingNonRegular: true)
        defer { ctx.close() }
        // The archived attributes go on the temporary file before its rename: a crash leaves the old file or the
        // new one with its mode, owner and times, never the new content with the import's defaults.
        try ctx.write(chunkSize: RawContext.importChunkSize, finishing: { fd throws(Errno) in try self.attributes(fd, entry, raw: true) }) { max in
            try self.content(max, entry.path)
        }
    }

    func restoreHardLink(_ entry: ArchiveEntry, _ parent: FileDescriptor, _ name: String) throws(EFSError) {
        let target = try Self.components(entry.linkTarget ?? "")
        guard let targetName = target.last else { throw EFSError(.invalidArgument, "a hard link to the destination itself") }
        let targetParent = try open(Array(target.dropLast()), create: false)
        defer { Sys.close(targetParent) }
        let targetStatus: FileStatus
        do { targetStatus = try Sys.lstatat(targetParent, targetName) } catch {
            throw EFSError.system(error, "the link target '\(entry.linkTarget ?? "")' is not there")
        }
        guard targetStatus.kind != .directory else { throw EFSError(.invalidArgument, "a hard link to a directory") }
        if let st = try? Sys.lstatat(parent, name), FileKey(st) == FileKey(targetStatus) { return }
        try replace(parent, name, "cannot create the hard link") { temporary throws(Errno) in
            try Sys.linkat(targetParent, targetName, parent, temporary)
        }
    }

    // MARK: - Attributes

    /// The mode to set: as archived for root; without set-user-ID and set-group-ID bits for others.
    func mode(_ entry: ArchiveEntry) -> UInt32 { isRoot ? entry.mode & 0o7777 : entry.mode & 0o1777 }

    /// Extended attributes, owner (root only), mode and times of an open file. Attributes that cannot be set are
    /// reported as warnings.
    func attributes(_ fd: FileDescriptor, _ entry: ArchiveEntry, raw: Bool) throws(Errno) {
        setExtendedAttributes(fd, entry, raw: raw)
        if isRoot {
            do { try Sys.fchown(fd, uid: entry.uid, gid: entry.gid) } catch {
                report(entry.path, EFSError.system(error, "cannot restore the owner"), warning: true)
            }
        }
        try Sys.fchmod(fd, mode(entry))
        try Sys.futimens(fd, access: Sys.time(entry.accessTime ?? entry.modificationTime), modification: Sys.time(entry.modificationTime))
    }

    /// Sets archived extended attributes: all of them as root, `user.*` ones otherwise (others need privileges).
    /// An encrypted file's sealed `user.efs.x.*` attributes come from its raw stream only.
    func setExtendedAttributes(_ fd: FileDescriptor, _ entry: ArchiveEntry, raw: Bool) {
        for x in entry.extendedAttributes {
            if raw && x.name.hasPrefix(NamedStreams.backingPrefix) { continue }
            if !isRoot && !x.name.hasPrefix("user.") { continue }
            do { try Sys.setXattr(fd, x.name, x.value) } catch {
                report(entry.path, EFSError.system(error, "cannot restore extended attribute '\(x.name)'"), warning: true)
            }
        }
    }
}
