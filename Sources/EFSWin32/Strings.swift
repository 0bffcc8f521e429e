// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import CEFSWin32
import EFS
import SystemPackage

/// Paths and names across the C ABI: UTF-8 for the "A" functions, UTF-16 (`WCHAR`) for the "W" functions.
enum Strings {
    /// The longest path accepted, in code units: Windows' limit for extended-length (`\\?\`) paths. Linux itself
    /// stops at `PATH_MAX` (4096 bytes) and reports longer paths as its own error.
    static let maximumPathLength = 32_767

    /// The path named by a NUL-terminated UTF-8 (in fact any byte string) `LPCSTR`, byte for byte.
    ///
    /// - Throws: `ERROR_INVALID_PARAMETER` for NULL or a string longer than ``maximumPathLength``.
    static func path(_ string: LPCSTR?) throws(Win32Error) -> FilePath {
        guard let string else { throw .invalidParameter }
        // Unsafe: the caller passes a NUL-terminated string (the LPCSTR contract). We read units up to and
        // including the first NUL, and never more than maximumPathLength + 1 of them.
        var length = 0
        while length <= maximumPathLength, string[length] != 0 { length += 1 }
        guard length <= maximumPathLength else { throw .invalidParameter }
        // Unsafe: `string` is NUL-terminated at `length`, checked above. FilePath keeps the bytes as they are.
        return FilePath(platformString: string)
    }

    /// The path named by a NUL-terminated UTF-16 `LPCWSTR`, as UTF-8.
    ///
    /// - Throws: `ERROR_INVALID_PARAMETER` for NULL, a string longer than ``maximumPathLength``, or invalid UTF-16
    ///   (an unpaired surrogate, which Linux names cannot hold).
    static func path(_ string: LPCWSTR?) throws(Win32Error) -> FilePath {
        guard let string else { throw .invalidParameter }
        // Unsafe: the caller passes a NUL-terminated UTF-16 string (the LPCWSTR contract). We read units up to and
        // including the first NUL, and never more than maximumPathLength + 1 of them.
        var length = 0
        while length <= maximumPathLength, string[length] != 0 { length += 1 }
        guard length <= maximumPathLength else { throw .invalidParameter }
        // Unsafe: the `length` units before the NUL were just read, so the buffer is valid for the decoding.
        guard let text = String(validating: UnsafeBufferPointer(start: string, count: length), as: UTF16.self) else {
            throw .invalidParameter
        }
        return FilePath(text)
    }

    /// A new NUL-terminated UTF-16 copy of `text`, allocated with `malloc` for the caller of the C ABI.
    ///
    /// - Throws: `ERROR_NOT_ENOUGH_MEMORY` when `malloc` fails.
    static func allocateUTF16(_ text: String) throws(Win32Error) -> LPWSTR {
        let units = Array(text.utf16) + [0]
        let out = try CHeap.allocate(WCHAR.self, count: units.count)
        // Unsafe: `out` was just allocated with room for exactly `units.count` WCHARs; `units` is never empty (it
        // holds at least the NUL), so its base address exists.
        units.withUnsafeBufferPointer { out.initialize(from: $0.baseAddress!, count: units.count) }
        return out
    }
}
