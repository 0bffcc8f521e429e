// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

/// A failure to decode or validate bytes that came from outside: a backing file, a raw stream, a key file.
///
/// Equality compares ``code`` only. The message is for people and never contains key material.
public struct FormatError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Hashable, Sendable {
            case truncated, badMagic, unsupportedVersion, unknownFlags, limitExceeded, malformed,
                checksumMismatch, trailingData, authenticationFailed, unsupportedAlgorithm
        }
        let base: Base
        public var description: String { base.rawValue }

        /// The input ends before a structure is complete.
        public static let truncated = Code(base: .truncated)
        /// The input does not start with the expected signature.
        public static let badMagic = Code(base: .badMagic)
        /// A version number this build does not know.
        public static let unsupportedVersion = Code(base: .unsupportedVersion)
        /// Flag bits this build does not know.
        public static let unknownFlags = Code(base: .unknownFlags)
        /// A count or length above its named maximum.
        public static let limitExceeded = Code(base: .limitExceeded)
        /// A structurally invalid field.
        public static let malformed = Code(base: .malformed)
        /// An unkeyed integrity checksum does not match (torn write or corruption).
        public static let checksumMismatch = Code(base: .checksumMismatch)
        /// Bytes follow the end of a structure that must be the last.
        public static let trailingData = Code(base: .trailingData)
        /// A keyed check (AEAD tag, MAC) failed. Deliberately says nothing more.
        public static let authenticationFailed = Code(base: .authenticationFailed)
        /// An algorithm identifier or key type this build does not implement.
        public static let unsupportedAlgorithm = Code(base: .unsupportedAlgorithm)
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: FormatError, rhs: FormatError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    @inline(never)
    public static func truncated(_ field: StaticString) -> FormatError {
        FormatError(.truncated, "truncated input: \(field) is incomplete")
    }
    @inline(never)
    public static func limitExceeded(_ field: StaticString, value: UInt64, maximum: Int) -> FormatError {
        FormatError(.limitExceeded, "\(field) is \(value), above the maximum \(maximum)")
    }
    @inline(never)
    public static func malformed(_ message: String) -> FormatError { FormatError(.malformed, message) }
    @inline(never)
    public static func trailingData(_ what: StaticString, count: Int) -> FormatError {
        FormatError(.trailingData, "\(count) unexpected bytes after \(what)")
    }
    /// The one opaque authentication failure.
    public static let authenticationFailed = FormatError(
        .authenticationFailed,
        "authentication failed: the data was modified, truncated or does not belong to this file"
    )
}
