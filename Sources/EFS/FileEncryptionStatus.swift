// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSSystem
import SystemPackage

/// The result of ``EFSSession/fileEncryptionStatus(at:)``, with the values of Windows' `FileEncryptionStatus`.
public enum FileEncryptionStatus: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// `FILE_ENCRYPTABLE`: can be encrypted.
    case encryptable = 0
    /// `FILE_IS_ENCRYPTED`.
    case encrypted = 1
    /// `FILE_SYSTEM_ATTR`: one of swift-efs's own files (directory marker, temporary file, volume config).
    case systemFile = 2
    /// `FILE_ROOT_DIR`: the root of a volume (or of the file system); as on Windows, roots cannot be encrypted.
    case rootDirectory = 3
    /// `FILE_SYSTEM_DIR`: the volume's `.efs` configuration directory.
    case systemDirectory = 4
    /// `FILE_UNKNOWN`: the object exists but its state cannot be read (for example a damaged header).
    case unknown = 5
    /// `FILE_SYSTEM_NOT_SUPPORT`: not on an EFS volume, or not a regular file or directory.
    case fileSystemNotSupported = 6
    /// `FILE_USER_DISALLOWED`: reserved by Windows; never returned.
    case userDisallowed = 7
    /// `FILE_READ_ONLY`: the caller cannot write it.
    case readOnly = 8
    /// `FILE_DIR_DISALLOWED`: encryption is disabled here (``EFSSession/encryptionDisable(_:disable:)``).
    case directoryDisallowed = 9

    public var description: String {
        switch self {
        case .encryptable: "not encrypted (can be encrypted)"
        case .encrypted: "encrypted"
        case .systemFile: "not encrypted (a swift-efs system file)"
        case .rootDirectory: "not encrypted (a volume root cannot be encrypted)"
        case .systemDirectory: "not encrypted (the volume's configuration directory)"
        case .unknown: "unknown (the file cannot be read)"
        case .fileSystemNotSupported: "not encrypted (not on an EFS volume, or not a regular file or directory)"
        case .userDisallowed: "not encrypted (disallowed for this user)"
        case .readOnly: "not encrypted (read-only)"
        case .directoryDisallowed: "not encrypted (encryption is disabled in this directory)"
        }
    }

    /// The name Windows uses.
    public var win32Name: String {
        switch self {
        case .encryptable: "FILE_ENCRYPTABLE"
        case .encrypted: "FILE_IS_ENCRYPTED"
        case .systemFile: "FILE_SYSTEM_ATTR"
        case .rootDirectory: "FILE_ROOT_DIR"
        case .systemDirectory: "FILE_SYSTEM_DIR"
        case .unknown: "FILE_UNKNOWN"
        case .fileSystemNotSupported: "FILE_SYSTEM_NOT_SUPPORT"
        case .userDisallowed: "FILE_USER_DISALLOWED"
        case .readOnly: "FILE_READ_ONLY"
        case .directoryDisallowed: "FILE_DIR_DISALLOWED"
        }
    }
}

/// The hidden file that marks a directory as encrypted: an empty encrypted file whose key lists are the
/// directory's EFS metadata. New files created in the directory through the library or the mount are encrypted.
public enum DirectoryMarker {
    public static let name = ".efs-dir"
}

/// `Desktop.ini` handling for EncryptionDisable, as Windows does it: `[Encryption]` / `Disable=1`.
enum DesktopIni {
    static let name = "Desktop.ini"
    static let maximumSize = 64 * 1024

    /// Whether `dir/Desktop.ini` disables encryption.
    static func isDisabled(_ dir: FilePath) -> Bool {
        guard let bytes = try? FileIO.read(dir.appending(name), maximum: maximumSize) else { return false }
        var inSection = false
        for raw in String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let line = String(raw).trimmingWhitespace()
            if line.hasPrefix("[") {
                inSection = line.lowercased() == "[encryption]"
            } else if inSection {
                let kv = line.split(separator: "=", maxSplits: 1).map { String($0).trimmingWhitespace() }
                if kv.count == 2, kv[0].lowercased() == "disable" { return kv[1] == "1" }
            }
        }
        return false
    }

    /// Rewrites `dir/Desktop.ini` with `Disable=1` or `Disable=0` in its `[Encryption]` section, keeping other lines.
    static func set(_ dir: FilePath, disabled: Bool) throws(EFSError) {
        let path = dir.appending(name)
        var lines: [String] = []
        if FileIO.exists(path) {
            let text = String(decoding: try FileIO.read(path, maximum: maximumSize), as: UTF8.self)
            lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map {
                $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
            }
            if lines.last == "" { lines.removeLast() }
        }
        let value = "Disable=\(disabled ? 1 : 0)"
        if let sec = lines.firstIndex(where: { $0.trimmingWhitespace().lowercased() == "[encryption]" }) {
            var i = sec + 1
            var replaced = false
            while i < lines.count, !lines[i].trimmingWhitespace().hasPrefix("[") {
                let kv = lines[i].split(separator: "=", maxSplits: 1)
                if kv.count == 2, String(kv[0]).trimmingWhitespace().lowercased() == "disable" {
                    lines[i] = value
                    replaced = true
                }
                i += 1
            }
            if !replaced { lines.insert(value, at: sec + 1) }
        } else {
            lines += ["[Encryption]", value]
        }
        try FileIO.writeAtomically(path, Array((lines.joined(separator: "\r\n") + "\r\n").utf8), mode: 0o644)
    }
}

extension EFSSession {
    /// Where a path sits: its volume, and whether it is one of swift-efs's own objects.
    struct Placement {
        var path: FilePath
        var status: FileStatus
        var volume: Volume?
    }

    func place(_ path: FilePath) throws(EFSError) -> Placement {
        let st: FileStatus
        do { st = try Sys.lstat(path) } catch { throw EFSError.system(error, "cannot open", path) }
        return Placement(path: path, status: st, volume: try Volume.find(containing: path, includeSelf: st.kind == .directory))
    }

    /// `FileEncryptionStatus`: whether `path` is encrypted, or why it cannot be.
    public func fileEncryptionStatus(at path: FilePath) throws(EFSError) -> FileEncryptionStatus {
        let p = try place(path)
        let name = path.lastComponent?.string ?? ""
        if name == DirectoryMarker.name || TemporaryName.isTemporary(name) { return .systemFile }
        switch p.status.kind {
        case .regular:
            guard let fd = try? Sys.open(path, .readOnly) else { return Sys.isWritable(path) ? .unknown : .readOnly }
            defer { Sys.close(fd) }
            if EncryptedFileInfo.hasMagic(fd) {
                return (try? EncryptedFileInfo.read(fd, path: path)) != nil ? .encrypted : .unknown
            }
        case .directory:
            if (try? Sys.lstat(path.appending(DirectoryMarker.name)))?.kind == .regular { return .encrypted }
        case .symlink, .other:
            return .fileSystemNotSupported
        }
        guard let volume = p.volume else {
            return (try? Sys.realpath(path)) == FilePath("/") ? .rootDirectory : .fileSystemNotSupported
        }
        let real = (try? Sys.realpath(path)) ?? path
        if real == volume.root { return .rootDirectory }
        if real == volume.configDirectory { return .systemDirectory }
        if volume.isConfigPath(real) { return .systemFile }
        let dir = p.status.kind == .directory ? path : path.removingLastComponent()
        if DesktopIni.isDisabled(dir.isEmpty ? "." : dir) { return .directoryDisallowed }
        if !Sys.isWritable(path) { return .readOnly }
        if p.status.kind == .regular, p.status.permissions.intersection([.ownerWrite, .groupWrite, .otherWrite]).isEmpty {
            return .readOnly
        }
        return .encryptable
    }

    /// `EncryptionDisable`: disables (or re-enables) encryption in a directory through its `Desktop.ini`.
    /// Subdirectories are not affected. Setting the current state is a successful no-op.
    public func encryptionDisable(_ directory: FilePath, disable: Bool) throws(EFSError) {
        let st: FileStatus
        do { st = try Sys.stat(directory) } catch { throw EFSError.system(error, "cannot open", directory) }
        guard st.kind == .directory else {
            throw EFSError(.invalidArgument, "\(directory) is not a directory: EncryptionDisable applies to directories")
        }
        if DesktopIni.isDisabled(directory) == disable { return }
        try DesktopIni.set(directory, disabled: disable)
    }
}
