// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSSystem
import Foundation
import SystemPackage

/// What a tree holds, object by object, as its user sees it through the library: for crash tests, which compare the
/// tree after a crash with the tree before and after the operation (``problems(old:new:)``).
///
/// An encrypted file is recorded by its plaintext, key lists and decrypted extended attributes, so two encryptions
/// of the same bytes compare equal; a file that does not open is ``Object/unreadable(_:)``, which equals nothing.
/// Temporary names (`*.efs-tmp-*`) are listed apart and not entered; directory markers and the volume's `.efs`
/// directory are not objects of their own.
public struct TreeState: Sendable, Equatable {
    /// File contents, compared with one memcmp.
    public struct Content: Sendable, Equatable, CustomStringConvertible {
        public let bytes: [UInt8]
        public init(_ bytes: [UInt8]) { self.bytes = bytes }
        public static func == (a: Content, b: Content) -> Bool { TestFiles.same(a.bytes, b.bytes) }
        public var description: String {
            let fnv = bytes.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
            return "\(bytes.count) bytes (fnv \(String(fnv, radix: 16)))"
        }
    }

    public enum Object: Sendable, Equatable, CustomStringConvertible {
        /// A directory; `users`/`agents` are its marker's key lists (empty if it is not marked).
        case directory(encrypted: Bool, users: [String], agents: [String])
        case plain(Content, mode: UInt32, xattrs: [String: Content])
        case encrypted(Content, mode: UInt32, users: [String], agents: [String], xattrs: [String: Content])
        case symlink(String)
        case other
        /// Could not be read (an encrypted file that does not open, an unreadable attribute): never a valid state.
        case unreadable(String)

        public var description: String {
            switch self {
            case .directory(let e, let u, let a): e ? "encrypted directory (users \(u), agents \(a))" : "directory"
            case .plain(let c, let m, let x): "plain file, \(c), mode \(String(m, radix: 8)), xattrs \(x.keys.sorted())"
            case .encrypted(let c, let m, let u, let a, let x):
                "encrypted file, \(c), mode \(String(m, radix: 8)), users \(u), agents \(a), xattrs \(x.keys.sorted())"
            case .symlink(let t): "symlink to \(t)"
            case .other: "special file"
            case .unreadable(let why): "UNREADABLE: \(why)"
            }
        }
    }

    /// Objects by path relative to the root (`.` for the root itself); absent when the root does not exist.
    public var objects: [String: Object] = [:]
    /// Relative paths of temporary names.
    public var temporaries: [String] = []

    public init() {}

    /// The state of `root` and everything below it, read with `session`'s keys.
    public static func capture(_ root: FilePath, session: EFSSession) -> TreeState {
        var state = TreeState()
        guard (try? Sys.lstat(root)) != nil else { return state }
        state.visit(root, ".", session)
        state.temporaries.sort()
        return state
    }

    private mutating func visit(_ path: FilePath, _ rel: String, _ session: EFSSession) {
        guard let st = try? Sys.lstat(path) else {
            objects[rel] = .unreadable("cannot stat")
            return
        }
        switch st.kind {
        case .directory:
            let marked = session.isEncryptedDirectory(path)
            var users: [String] = [], agents: [String] = []
            if marked {
                do {
                    users = try session.queryUsers(at: path).map(Self.name)
                    agents = try session.queryRecoveryAgents(at: path).map(Self.name)
                } catch {
                    objects[rel] = .unreadable("directory marker: \(error.message)")
                    return
                }
            }
            objects[rel] = .directory(encrypted: marked, users: users, agents: agents)
            for e in (try? Sys.listDirectory(path)) ?? [] {
                let child = rel == "." ? e.name : "\(rel)/\(e.name)"
                if TemporaryName.isTemporary(e.name) {
                    temporaries.append(child)
                } else if e.name != DirectoryMarker.name && e.name != Volume.configDirectoryName {
                    visit(path.appending(e.name), child, session)
                }
            }
        case .regular:
            objects[rel] = Self.file(path, mode: st.mode & 0o7777, session)
        case .symlink:
            objects[rel] = .symlink(String(decoding: (try? Sys.readlink(path)) ?? [], as: UTF8.self))
        case .other:
            objects[rel] = .other
        }
    }

    /// A key-list entry by its thumbprint's first eight digits (display names would parse every certificate).
    private static func name(_ entry: CertificateHash) -> String { String(entry.thumbprint.hex.prefix(8)) }

    private static func file(_ path: FilePath, mode: UInt32, _ session: EFSSession) -> Object {
        guard let fd = try? Sys.open(path, .readOnly) else { return .unreadable("cannot open") }
        let encrypted = EncryptedFileInfo.hasMagic(fd)
        defer { Sys.close(fd) }
        guard encrypted else {
            var xattrs: [String: Content] = [:]
            for name in (try? Sys.listXattrs(fd)) ?? [] where name.hasPrefix("user.") {
                guard let v = try? Sys.getXattr(fd, name) else { return .unreadable("cannot read xattr \(name)") }
                xattrs[name] = Content(v)
            }
            return .plain(Content(TestFiles.read(path)), mode: mode, xattrs: xattrs)
        }
        do {
            let file = try session.open(at: path)
            defer { try? file.close() }
            let bytes = try file.read(at: 0, count: Int(file.size))
            var xattrs: [String: Content] = [:]
            for name in try file.listExtendedAttributes() {
                guard let v = try file.extendedAttribute(name) else { return .unreadable("xattr \(name) vanished") }
                xattrs[name] = Content(v)
            }
            let users = try session.queryUsers(at: path).map(Self.name)
            let agents = try session.queryRecoveryAgents(at: path).map(Self.name)
            return .encrypted(Content(bytes), mode: mode, users: users, agents: agents, xattrs: xattrs)
        } catch {
            return .unreadable(error.message)
        }
    }

    /// A name as it is on disk: kind, inode, size and mode, and for a regular file its stored bytes and extended
    /// attributes.
    public struct Stored: Sendable, Equatable, CustomStringConvertible {
        var status: String
        var bytes: Content?
        var xattrs: [String: Content]
        public var description: String { "\(status) \(bytes.map(\.description) ?? "") xattrs \(xattrs.keys.sorted())" }
    }

    /// Every name below `root` as it is on disk, without a key: to check that something (a repair) changed nothing
    /// else.
    public static func fingerprint(_ root: FilePath) -> [String: Stored] {
        var out: [String: Stored] = [:]
        func visit(_ path: FilePath, _ rel: String) {
            guard let st = try? Sys.lstat(path) else { return }
            var stored = Stored(status: "\(st.kind) inode \(st.inode) size \(st.size) mode \(st.mode)", bytes: nil, xattrs: [:])
            if st.kind == .regular, let fd = try? Sys.open(path, .readOnly) {
                defer { Sys.close(fd) }
                stored.bytes = Content(TestFiles.read(path))
                for name in (try? Sys.listXattrs(fd)) ?? [] { stored.xattrs[name] = Content((try? Sys.getXattr(fd, name)) ?? []) }
            }
            out[rel] = stored
            guard st.kind == .directory else { return }
            for e in (try? Sys.listDirectory(path)) ?? [] { visit(path.appending(e.name), rel == "." ? e.name : "\(rel)/\(e.name)") }
        }
        visit(root, ".")
        return out
    }

    /// What is wrong with this state (taken after a crash) given the states before (`old`) and after (`new`) the
    /// interrupted operation: each object must be as it was or as it would have become (absent counting as a
    /// state), and every temporary name must be hidden (start with a dot).
    public func problems(old: TreeState, new: TreeState) -> [String] {
        var out: [String] = []
        let paths = Set(objects.keys).union(old.objects.keys).union(new.objects.keys).sorted()
        for p in paths {
            let now = objects[p]
            if now == old.objects[p] || now == new.objects[p] { continue }
            func show(_ o: Object?) -> String { o.map(\.description) ?? "absent" }
            out.append("\(p): \(show(now)); before: \(show(old.objects[p])); after: \(show(new.objects[p]))")
        }
        for t in temporaries where !(t.split(separator: "/").last ?? "").hasPrefix(".") {
            out.append("\(t): a visible temporary name")
        }
        return out
    }
}
