// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import EFSSystem
import Synchronization
import SystemPackage

/// The flags of `OpenEncryptedFileRaw`. Unknown bits are ignored, as MS-EFSR requires of a server.
public struct RawFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Export when absent; import (restore) when present. The corresponding C constant is `CREATE_FOR_IMPORT`.
    public static let createForImport = RawFlags(rawValue: 1)
    /// The object is a directory. The corresponding C constant is `CREATE_FOR_DIR`.
    public static let createForDirectory = RawFlags(rawValue: 2)
    /// Allow an import to replace a hidden object (one whose name starts with a dot). C: `OVERWRITE_HIDDEN`.
    public static let overwriteHidden = RawFlags(rawValue: 4)
    /// Accepted and ignored (it concerns RPC transport security on Windows). C: `EFSRPC_SECURE_ONLY`.
    public static let secureOnly = RawFlags(rawValue: 8)
    /// Leave out named streams (extended attributes) on export, ignore them on import.
    /// C: `EFS_DROP_ALTERNATE_STREAMS`.
    public static let dropAlternateStreams = RawFlags(rawValue: 0x10)
}

/// Named streams of the raw stream are the object's encrypted extended attributes. On the backing file an
/// attribute `NAME` is stored as `user.efs.x.NAME`, its value sealed with the FEK's stream key.
public enum NamedStreams {
    public static let backingPrefix = "user.efs.x."
    /// Most named streams one object may carry.
    public static let maximumCount = 1_024
}

/// A raw export or import context: `OpenEncryptedFileRaw` / `ReadEncryptedFileRaw` / `WriteEncryptedFileRaw` /
/// `CloseEncryptedFileRaw`.
///
/// Export streams an encrypted file or directory in its encrypted state, in the MS-EFSR 2.2.3 format: no key is
/// used, and the stream never holds plaintext. Import reads such a stream into a temporary file beside the target,
/// checks the whole structure, fsyncs and renames it into place, so a bad or interrupted stream changes nothing.
/// While a context is open it holds the object's EFS lock: other EFS opens (the mount, other raw contexts) get a
/// sharing violation, and so does this open if they were first.
///
/// ```swift
/// let ctx = try RawContext.open("/data/vault/report.pdf", flags: [])
/// defer { ctx.close() }
/// try ctx.read { chunk in try output.write(chunk) }
/// ```
public final class RawContext: Sendable {
    public let path: FilePath
    public let flags: RawFlags
    /// When an import is made durable: before its rename (the default, what `WriteEncryptedFileRaw` does), or by
    /// the caller later with one `syncfs` for many objects (what `efs restore` does).
    public enum Durability: Sendable { case eachObject, deferredToCaller }
    public let durability: Durability
    public var isImport: Bool { flags.contains(.createForImport) }
    let isDirectory: Bool

    struct State: Sendable {
        /// Export: the backing file (or directory marker). Import: the existing target, locked, if any.
        var fd: FileDescriptor?
        var used = false
        var closed = false
        /// Import: the directory the target is created in, opened once; every later step is relative to it, so
        /// a path component swapped for a symbolic link after the open cannot redirect the import.
        var directory: FileDescriptor?
        /// Import: the target's name in ``directory``.
        var name = ""
        /// Import: the temporary file's name in ``directory``, while it exists.
        var temporary: String?
        var temporaryFD: FileDescriptor?
        var existing: FileStatus?
        /// Export: what ``streamLength()`` planned, reused by ``read(_:)``.
        var plan: ExportPlan?
    }
    let state: Mutex<State>

    private init(path: FilePath, flags: RawFlags, isDirectory: Bool, state: State, durability: Durability = .eachObject) {
        self.path = path
        self.flags = flags
        self.durability = durability
        self.isDirectory = isDirectory
        self.state = Mutex(state)
    }

    deinit { close() }

    // MARK: - Open

    /// `OpenEncryptedFileRaw`.
    ///
    /// - Parameter durability: for imports, ``Durability/deferredToCaller`` skips the per-object fsyncs; the
    ///   caller must then flush the file system (``EFSSystem/Sys/syncFileSystem(_:)``) before relying on the result.
    public static func open(_ path: FilePath, flags: RawFlags, durability: Durability = .eachObject) throws(EFSError) -> RawContext {
        flags.contains(.createForImport) ? try openForImport(path, flags, durability) : try openForExport(path, flags)
    }

    private static func openForExport(_ path: FilePath, _ flags: RawFlags) throws(EFSError) -> RawContext {
        let st: FileStatus
        do { st = try Sys.stat(path) } catch { throw EFSError.system(error, "cannot open", path) }
        let isDir = st.kind == .directory
        if flags.contains(.createForDirectory) && !isDir {
            throw EFSError(.invalidArgument, "\(path) is not a directory (CREATE_FOR_DIR was given)")
        }
        guard isDir || st.kind == .regular else { throw EFSError(.notSupported, "\(path) is not a regular file or directory") }
        let target = isDir ? path.appending(DirectoryMarker.name) : path
        if isDir && !FileIO.exists(target) { throw EFSError(.notEncrypted, "\(path) is not encrypted") }
        let fd = try openAndLock(target, display: path)
        guard EncryptedFileInfo.hasMagic(fd) else {
            Sys.close(fd)
            throw EFSError(.notEncrypted, "\(path) is not encrypted")
        }
        return RawContext(path: path, flags: flags, isDirectory: isDir, state: State(fd: fd))
    }

    /// Where ``openAndLock(_:display:)`` finds the object: a path, or a name in an open directory.
    enum LockTarget {
        case path(FilePath)
        case at(FileDescriptor, String)

        func open(writable: Bool) throws(Errno) -> FileDescriptor {
            let flags: OpenFlags = [writable ? .readWrite : .readOnly, .noFollow]
            switch self {
            case .path(let p): return try Sys.open(p, flags)
            case .at(let dir, let name): return try Sys.openat(dir, name, flags)
            }
        }
    }

    /// Opens read-write if allowed (so the lock is exclusive), else read-only with a shared lock and a check that
    /// nobody else holds one. Either way a second EFS opener gets a sharing violation. Never follows a final
    /// symbolic link.
    static func openAndLock(_ target: FilePath, display: FilePath) throws(EFSError) -> FileDescriptor {
        try openAndLock(LockTarget.path(target), display: display)
    }

    static func openAndLock(_ target: LockTarget, display: FilePath) throws(EFSError) -> FileDescriptor {
        var fd: FileDescriptor
        var exclusive = true
        do { fd = try target.open(writable: true) } catch {
            guard error == .permissionDenied || error == .readOnlyFileSystem else { throw EFSError.system(error, "cannot open", display) }
            do { fd = try target.open(writable: false) } catch { throw EFSError.system(error, "cannot open", display) }
            exclusive = false
        }
        do {
            let ok = exclusive ? try Sys.tryLockExclusive(fd) : (try Sys.tryLockShared(fd) && !(try Sys.isLockedElsewhere(fd)))
            guard ok else {
                Sys.close(fd)
                throw EFSError(.sharingViolation, "\(display) is open elsewhere (mounted, or in another raw context)")
            }
        } catch let e as EFSError {
            throw e
        } catch {
            Sys.close(fd)
            throw EFSError.system(error as? Errno ?? .ioError, "cannot lock", display)
        }
        return fd
    }

    private static func openForImport(_ path: FilePath, _ flags: RawFlags, _ durability: Durability) throws(EFSError) -> RawContext {
        let parent = path.removingLastComponent().isEmpty ? FilePath(".") : path.removingLastComponent()
        guard let name = path.lastComponent?.string, name != ".", name != ".." else {
            throw EFSError(.invalidArgument, "\(path) does not name an object to import into")
        }
        let dir: FileDescriptor
        do { dir = try Sys.open(parent, [.readOnly, .directory]) } catch where error == .notDirectory {
            throw EFSError(.fileNotFound, "\(parent) is not a directory")
        } catch {
            throw EFSError.system(error, "cannot import into", parent)
        }
        defer { Sys.close(dir) }
        return try openForImport(in: dir, name: name, path: path, flags: flags, durability: durability)
    }

    /// `OpenEncryptedFileRaw` for import, relative to an open directory: the object `name` in `directory`.
    ///
    /// Nothing is resolved by path after this: the context keeps its own descriptor of `directory`, and the
    /// existing target, the temporary file, a directory target's marker and the final rename are all reached
    /// relative to it without following symbolic links. This is what `efs restore` uses, after opening each parent
    /// one component at a time with `O_NOFOLLOW`, so that another local user who can write into the destination
    /// cannot make an import land outside it by swapping a directory for a link.
    ///
    /// - Parameters:
    ///   - path: what messages call the object (the import never resolves it).
    ///   - replacingNonRegular: replace a symbolic link, FIFO or socket at `name` by the rename into place, as
    ///     `efs restore` does where the archive holds a file (the raw API refuses them, as Windows does).
    public static func openForImport(in directory: FileDescriptor, name: String, path: FilePath, flags: RawFlags,
                                     durability: Durability = .eachObject, replacingNonRegular: Bool = false) throws(EFSError) -> RawContext {
        let flags = flags.union(.createForImport)
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else {
            throw EFSError(.invalidArgument, "'\(name)' is not a name in a directory")
        }
        let dir: FileDescriptor
        do { dir = try Sys.openat(directory, ".", [.readOnly, .directory]) } catch {
            throw EFSError.system(error, "cannot import into the directory of", path)
        }
        var st = State(directory: dir, name: name)
        do throws(EFSError) {
            guard Sys.isWritableDirectory(dir) else { throw EFSError(.accessDenied, "no write access to the directory of \(path)") }
            let isDir = flags.contains(.createForDirectory)
            if let existing = try? Sys.lstatat(dir, name) {
                // "Hidden" on Linux: a dot name, the usual convention for objects that listings hide.
                if name.hasPrefix("."), !flags.contains(.overwriteHidden) {
                    throw EFSError(.accessDenied, "\(path) exists and is hidden: give OVERWRITE_HIDDEN (--overwrite-hidden) to replace it")
                }
                switch (existing.kind, isDir) {
                case (.directory, false): throw EFSError(.alreadyExists, "\(path) is a directory (use CREATE_FOR_DIR to import a directory)")
                case (.regular, true), (.symlink, true), (.other, true): throw EFSError(.alreadyExists, "\(path) exists and is not a directory")
                case (.symlink, false), (.other, false):
                    guard replacingNonRegular else { throw EFSError(.notSupported, "\(path) exists and is not a regular file") }
                case (.directory, true):
                    let target = try openDirectoryTarget(dir, name, path)
                    defer { Sys.close(target) }
                    if (try? Sys.lstatat(target, DirectoryMarker.name)) != nil {
                        st.fd = try openAndLock(.at(target, DirectoryMarker.name), display: path)
                    }
                case (.regular, false):
                    st.fd = try openAndLock(.at(dir, name), display: path)
                }
                st.existing = existing
            }
        } catch {
            Sys.close(dir)
            throw error
        }
        return RawContext(path: path, flags: flags, isDirectory: flags.contains(.createForDirectory), state: st, durability: durability)
    }

    /// Opens the existing directory `name` in `dir` without following a symbolic link.
    static func openDirectoryTarget(_ dir: FileDescriptor, _ name: String, _ path: FilePath) throws(EFSError) -> FileDescriptor {
        do { return try Sys.openat(dir, name, [.readOnly, .directory, .noFollow]) } catch {
            throw EFSError.system(error, "cannot open the directory", path)
        }
    }

    // MARK: - Close

    /// `CloseEncryptedFileRaw`: frees everything and releases the lock. Safe to call at any point, and twice.
    public func close() {
        state.withLock { s in
            guard !s.closed else { return }
            s.closed = true
            if let fd = s.temporaryFD { Sys.close(fd) }
            if let t = s.temporary, let dir = s.directory { try? Sys.unlinkat(dir, t) }
            if let fd = s.fd { Sys.close(fd) }
            if let dir = s.directory { Sys.close(dir) }
            s.fd = nil
            s.directory = nil
            s.temporaryFD = nil
            s.temporary = nil
        }
    }

    func begin(importing: Bool) throws(EFSError) {
        try state.withLock { (s: inout State) throws(EFSError) in
            guard !s.closed else { throw EFSError(.invalidOperation, "the raw context is closed") }
            guard importing == isImport else {
                throw EFSError(.invalidOperation, importing ? "WriteEncryptedFileRaw on an export context" : "ReadEncryptedFileRaw on an import context")
            }
            guard !s.used else { throw EFSError(.invalidOperation, "the raw context was already used (call it once per open)") }
            s.used = true
        }
    }
}

/// The error a raw callback threw, or the Win32 code it returned, reported by read/write.
public struct RawCallbackError: Error, Sendable {
    public var code: UInt32
    public init(code: UInt32) { self.code = code }
}
