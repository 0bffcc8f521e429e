// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSCore
import EFSSystem
import Foundation
import SystemPackage

/// A temporary directory removed when the value is released.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: FilePath

    public init(_ prefix: String = "efs-test") {
        let base = FilePath(NSTemporaryDirectory()).appending("\(prefix)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(atPath: base.string, withIntermediateDirectories: true)
        path = base
    }

    deinit { try? FileManager.default.removeItem(atPath: path.string) }

    public func appending(_ name: String) -> FilePath { path.appending(name) }

    /// Writes a file and returns its path.
    @discardableResult
    public func write(_ name: String, _ bytes: [UInt8]) -> FilePath {
        let p = path.appending(name)
        try! Data(bytes).write(to: URL(fileURLWithPath: p.string))
        return p
    }
}

/// Reads and writes whole files in tests.
public enum TestFiles {
    public static func read(_ path: FilePath) -> [UInt8] {
        guard let d = try? Data(contentsOf: URL(fileURLWithPath: path.string)) else { return [] }
        return bytes(of: d)
    }

    /// Copies `Data` into an array with one memcpy (element-wise conversion is slow in debug builds).
    public static func bytes(of d: Data) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: d.count) { buf, n in
            n = d.copyBytes(to: buf)
        }
    }

    public static func write(_ path: FilePath, _ bytes: [UInt8]) {
        try! Data(bytes).write(to: URL(fileURLWithPath: path.string))
    }

    public static func exists(_ path: FilePath) -> Bool { FileManager.default.fileExists(atPath: path.string) }

    /// Deterministic pseudo-random bytes.
    public static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return [UInt8](unsafeUninitializedCapacity: count) { buf, n in
            var i = 0
            while i < count {
                var v = rng.next()
                for _ in 0..<min(8, count - i) {
                    buf[i] = UInt8(truncatingIfNeeded: v)
                    v >>= 8
                    i += 1
                }
            }
            n = count
        }
    }

    /// Byte-for-byte equality with one memcmp (element-wise `==` is slow in debug builds).
    public static func same(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
    }

    /// Whether `needle` occurs in `haystack` (memchr/memcmp, fast in debug builds too).
    public static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        return haystack.withUnsafeBytes { h in
            needle.withUnsafeBytes { n in
                var i = 0
                let last = h.count - n.count
                while i <= last {
                    guard let p = memchr(h.baseAddress! + i, Int32(n[0]), last - i + 1) else { return false }
                    let at = h.baseAddress!.distance(to: UnsafeRawPointer(p))
                    if memcmp(h.baseAddress! + at, n.baseAddress!, n.count) == 0 { return true }
                    i = at + 1
                }
                return false
            }
        }
    }

    /// Flips one bit of a file in place.
    public static func flipBit(_ path: FilePath, at offset: Int, bit: Int = 0) {
        var b = read(path)
        b[offset] ^= UInt8(1 << bit)
        write(path, b)
    }
}

/// A small, seedable generator for reproducible property tests.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A user with a key store of their own, for API tests.
public struct TestUser: Sendable {
    public let name: String
    public let store: KeyStore
    public let session: EFSSession
    public let certificate: EFSCertificate

    /// Makes a key store under `dir` with one unencrypted key (EC P-256 unless told otherwise).
    public init(_ name: String, in dir: TemporaryDirectory, kind: UserPrivateKey.Kind = .p256, recoveryAgent: Bool = false) throws {
        self.name = name
        store = KeyStore(root: dir.appending("home-\(name)"))
        certificate = try store.generateKey(name: name, kind: kind, recoveryAgent: recoveryAgent, passphrase: nil)
        session = EFSSession(keyStore: store, passphrase: nil)
    }
}
