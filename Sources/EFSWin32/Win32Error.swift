// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import CEFSWin32
import EFS
import EFSSystem
import SystemPackage

/// A failure of a C ABI call, as the Win32 error code the call returns (or stores as the last error).
///
/// This is the one place where errors become Win32 codes: ``EFSError`` through its `win32Code`, a callback's own
/// code through ``RawCallbackError``, and this layer's argument checks directly.
struct Win32Error: Error {
    var code: DWORD

    init(code: DWORD) { self.code = code }

    /// The code for an error thrown while working on `path`.
    ///
    /// Windows reports a missing file as `ERROR_FILE_NOT_FOUND` but a missing directory on the way to it as
    /// `ERROR_PATH_NOT_FOUND`; the EFS API has one code for both, so the parent is looked at here.
    init(_ error: any Error, path: FilePath? = nil) {
        switch error {
        case let e as Win32Error:
            code = e.code
        case let e as EFSError:
            code = e.win32Code
        case let e as RawCallbackError:
            code = e.code
        default:
            code = DWORD(ERROR_IO_DEVICE)
        }
        if code == DWORD(ERROR_FILE_NOT_FOUND), let path, Self.parentIsMissing(path) {
            code = DWORD(ERROR_PATH_NOT_FOUND)
        }
    }

    /// `ERROR_INVALID_PARAMETER`: a NULL or out-of-range argument.
    static let invalidParameter = Win32Error(code: DWORD(ERROR_INVALID_PARAMETER))

    private static func parentIsMissing(_ path: FilePath) -> Bool {
        let parent = path.removingLastComponent()
        if parent.isEmpty { return false }
        do {
            return try Sys.stat(parent).kind != .directory
        } catch {
            return error == .noSuchFileOrDirectory || error == .notDirectory
        }
    }
}

/// Runs the body of a C ABI function that returns a Win32 error code (a `DWORD` function).
func returningCode(_ body: () throws -> Void) -> DWORD {
    do {
        try body()
        return DWORD(ERROR_SUCCESS)
    } catch {
        return Win32Error(error).code
    }
}

/// Runs the body of a C ABI function that returns `BOOL`: `TRUE` with the last error reset to `ERROR_SUCCESS`,
/// or `FALSE` with the last error set to the failure's code.
func returningBool(_ body: () throws -> Void) -> BOOL {
    do {
        try body()
        SetLastError(DWORD(ERROR_SUCCESS))
        return 1  // TRUE (Swift does not import the TRUE and FALSE macros)
    } catch {
        SetLastError(Win32Error(error).code)
        return 0  // FALSE
    }
}

/// Runs `body`, an EFS call on `path`, turning its error into a ``Win32Error`` that knows the path.
func on<T>(_ path: FilePath, _ body: () throws -> T) throws(Win32Error) -> T {
    do { return try body() } catch { throw Win32Error(error, path: path) }
}
