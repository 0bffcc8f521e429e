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
        var temporary: FilePath?
        var temporaryFD: FileDescriptor?
        var existing: FileStatus?
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

    /// Opens read-write if allowed (so the lock is exclusive), else read-only with a shared lock and a check that
    /// nobody else holds one. Either way a second EFS opener gets a sharing violation.
    static func openAndLock(_ target: FilePath, display: FilePath) throws(EFSError) -> FileDescriptor {
        var fd: FileDescriptor
        var exclusive = true
        do { fd = try Sys.open(target, [.readWrite, .noFollow]) } catch {
            guard error == .permissionDenied || error == .readOnlyFileSystem else { throw EFSError.system(error, "cannot open", display) }
            do { fd = try Sys.open(target, [.readOnly, .noFollow]) } catch { throw EFSError.system(error, "cannot open", display) }
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
        let pst: FileStatus
        do { pst = try Sys.stat(parent) } catch { throw EFSError.system(error, "cannot import into", parent) }
        guard pst.kind == .directory else { throw EFSError(.fileNotFound, "\(parent) is not a directory") }
        guard Sys.isWritable(parent) else { throw EFSError(.accessDenied, "no write access to \(parent)") }
        let isDir = flags.contains(.createForDirectory)
        var st = State()
        if let existing = try? Sys.lstat(path) {
            let name = path.lastComponent?.string ?? ""
            // "Hidden" on Linux: a dot name, the usual convention for objects that listings hide.
            if name.hasPrefix("."), !flags.contains(.overwriteHidden) {
                throw EFSError(.accessDenied, "\(path) exists and is hidden: give OVERWRITE_HIDDEN (--overwrite-hidden) to replace it")
            }
            switch (existing.kind, isDir) {
            case (.directory, false): throw EFSError(.alreadyExists, "\(path) is a directory (use CREATE_FOR_DIR to import a directory)")
            case (.regular, true), (.symlink, true), (.other, true): throw EFSError(.alreadyExists, "\(path) exists and is not a directory")
            case (.symlink, false), (.other, false): throw EFSError(.notSupported, "\(path) exists and is not a regular file")
            case (.directory, true):
                let marker = path.appending(DirectoryMarker.name)
                if FileIO.exists(marker) { st.fd = try openAndLock(marker, display: path) }
            case (.regular, false):
                st.fd = try openAndLock(path, display: path)
            }
            st.existing = existing
        }
        return RawContext(path: path, flags: flags, isDirectory: isDir, state: st, durability: durability)
    }

    // MARK: - Close

    /// `CloseEncryptedFileRaw`: frees everything and releases the lock. Safe to call at any point, and twice.
    public func close() {
        state.withLock { s in
            guard !s.closed else { return }
            s.closed = true
            if let fd = s.temporaryFD { Sys.close(fd) }
            if let t = s.temporary { try? Sys.unlink(t) }
            if let fd = s.fd { Sys.close(fd) }
            s.fd = nil
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
