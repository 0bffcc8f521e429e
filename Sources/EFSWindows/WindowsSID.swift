// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore

/// A Windows security identifier in its binary (RPC_SID) form: revision, sub-authority count, 48-bit big-endian
/// identifier authority, then little-endian 32-bit sub-authorities (MS-DTYP 2.4.2.2). The Owner Hint of a `$EFS`
/// Public Key Information (`windows-efs-metadata.md` §4.2).
///
/// ```swift
/// if let sid = WindowsSID("S-1-5-21-1-2-3-1001") { print(sid, sid.bytes.count) }  // S-1-5-21-1-2-3-1001 28
/// ```
public struct WindowsSID: Sendable, Hashable, CustomStringConvertible {
    public var revision: UInt8
    /// The 48-bit identifier authority.
    public var identifierAuthority: UInt64
    public var subAuthorities: [UInt32]

    public init(revision: UInt8 = 1, identifierAuthority: UInt64, subAuthorities: [UInt32]) {
        self.revision = revision
        self.identifierAuthority = identifierAuthority & 0xFFFF_FFFF_FFFF
        self.subAuthorities = subAuthorities
    }

    /// Parses the "S-1-5-21-…" text form.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0] == "S" || parts[0] == "s", let rev = UInt8(parts[1]),
            let auth = UInt64(parts[2]), auth <= 0xFFFF_FFFF_FFFF,
            parts.count - 3 <= WindowsEFS.maximumSIDSubAuthorities
        else { return nil }
        var subs: [UInt32] = []
        for p in parts.dropFirst(3) {
            guard let v = UInt32(p) else { return nil }
            subs.append(v)
        }
        self.init(revision: rev, identifierAuthority: auth, subAuthorities: subs)
    }

    /// Size of the binary form.
    public var encodedSize: Int { 8 + 4 * subAuthorities.count }

    /// The binary form.
    public var bytes: [UInt8] {
        var w = ByteWriter(capacity: encodedSize)
        w.write(revision)
        w.write(UInt8(truncatingIfNeeded: subAuthorities.count))
        for i in stride(from: 40, through: 0, by: -8) {
            w.write(UInt8(truncatingIfNeeded: identifierAuthority >> UInt64(i)))
        }
        for s in subAuthorities { w.write(s) }
        return w.bytes
    }

    /// Parses the binary form at the start of `bytes`; returns the SID and its size.
    static func parse(_ bytes: ArraySlice<UInt8>) throws(FormatError) -> WindowsSID {
        var r = ByteReader(bytes)
        let revision = try r.readUInt8("SID revision")
        let count = Int(try r.readUInt8("SID sub-authority count"))
        guard revision == 1 else { throw FormatError(.malformed, "Owner Hint SID: revision \(revision) is not 1") }
        guard count <= WindowsEFS.maximumSIDSubAuthorities else {
            throw .limitExceeded(
                "Owner Hint SID sub-authority count", value: UInt64(count), maximum: WindowsEFS.maximumSIDSubAuthorities
            )
        }
        var authority: UInt64 = 0
        for b in try r.readBytes(6, "SID identifier authority") { authority = authority << 8 | UInt64(b) }
        var subs: [UInt32] = []
        for _ in 0..<count { subs.append(try r.readUInt32("SID sub-authority")) }
        return WindowsSID(revision: revision, identifierAuthority: authority, subAuthorities: subs)
    }

    public var description: String {
        let auth =
            identifierAuthority < 1 << 32
            ? "\(identifierAuthority)" : "0x" + String(identifierAuthority, radix: 16, uppercase: true)
        return (["S", "\(revision)", auth] + subAuthorities.map { "\($0)" }).joined(separator: "-")
    }
}
