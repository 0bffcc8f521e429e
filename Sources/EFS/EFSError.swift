// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import SystemPackage

/// Every failure of the EFS API.
///
/// Equality compares ``code`` only. Each code maps to one Win32 error (``win32Code``), one errno (``errno``) and
/// one CLI exit status (in the `efs` tool), so the three surfaces agree.
public struct EFSError: Error, Sendable, CustomStringConvertible, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: String, Hashable, Sendable {
            case fileNotFound, accessDenied, sharingViolation, notEncrypted, readOnly, encryptionDisallowed,
                noKey, noUserKeys, authenticationFailed, corrupt, unsupportedVersion, wrongPassphrase,
                notOnVolume, alreadyExists, ioError, lastUser, notSupported, invalidArgument, notExportFormat,
                invalidOperation, aborted
        }
        let base: Base
        public var description: String { base.rawValue }

        public static let fileNotFound = Code(base: .fileNotFound)
        public static let accessDenied = Code(base: .accessDenied)
        /// The file is open elsewhere in a way that excludes this operation.
        public static let sharingViolation = Code(base: .sharingViolation)
        public static let notEncrypted = Code(base: .notEncrypted)
        public static let readOnly = Code(base: .readOnly)
        /// Encryption is disabled here (EncryptionDisable), or the object cannot be encrypted (root, system).
        public static let encryptionDisallowed = Code(base: .encryptionDisallowed)
        /// None of the caller's keys can open the file.
        public static let noKey = Code(base: .noKey)
        /// The caller has no EFS key at all (or no current key).
        public static let noUserKeys = Code(base: .noUserKeys)
        /// Data or metadata failed authentication.
        public static let authenticationFailed = Code(base: .authenticationFailed)
        /// A structure is malformed.
        public static let corrupt = Code(base: .corrupt)
        public static let unsupportedVersion = Code(base: .unsupportedVersion)
        public static let wrongPassphrase = Code(base: .wrongPassphrase)
        public static let notOnVolume = Code(base: .notOnVolume)
        public static let alreadyExists = Code(base: .alreadyExists)
        public static let ioError = Code(base: .ioError)
        /// RemoveUsers would remove the last user.
        public static let lastUser = Code(base: .lastUser)
        public static let notSupported = Code(base: .notSupported)
        public static let invalidArgument = Code(base: .invalidArgument)
        /// A raw stream is not in the EFS export format.
        public static let notExportFormat = Code(base: .notExportFormat)
        /// A call made in the wrong state (e.g. a second write on a raw context).
        public static let invalidOperation = Code(base: .invalidOperation)
        /// A raw export or import callback stopped the operation.
        public static let aborted = Code(base: .aborted)
    }

    public var code: Code
    public var message: String
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }

    /// The message followed by the chain of causes.
    public func detailedDescription() -> String {
        var out = message
        var c = cause
        while let e = c {
            out += "\n  caused by: \(e)"
            c = (e as? EFSError)?.cause
        }
        return out
    }

    public static func == (a: EFSError, b: EFSError) -> Bool { a.code == b.code }

    // MARK: - Mapping

    /// The Win32 error code the C ABI returns for this error (`winerror.h` values).
    public var win32Code: UInt32 {
        switch code.base {
        case .fileNotFound: 2  // ERROR_FILE_NOT_FOUND
        case .accessDenied: 5  // ERROR_ACCESS_DENIED
        case .sharingViolation: 32  // ERROR_SHARING_VIOLATION
        case .notEncrypted: 6007  // ERROR_FILE_NOT_ENCRYPTED
        case .readOnly: 6009  // ERROR_FILE_READ_ONLY
        case .encryptionDisallowed: 6010  // ERROR_DIR_EFS_DISALLOWED
        case .noKey: 6001  // ERROR_DECRYPTION_FAILED
        case .noUserKeys: 6006  // ERROR_NO_USER_KEYS
        case .authenticationFailed: 6001  // ERROR_DECRYPTION_FAILED
        case .corrupt: 1392  // ERROR_FILE_CORRUPT
        case .unsupportedVersion: 6016  // ERROR_EFS_VERSION_NOT_SUPPORT
        case .wrongPassphrase: 86  // ERROR_INVALID_PASSWORD
        case .notOnVolume: 6014  // ERROR_VOLUME_NOT_SUPPORT_EFS
        case .alreadyExists: 80  // ERROR_FILE_EXISTS
        case .ioError: 1117  // ERROR_IO_DEVICE
        case .lastUser: 5  // ERROR_ACCESS_DENIED (Windows refuses removing the last user)
        case .notSupported: 50  // ERROR_NOT_SUPPORTED
        case .invalidArgument: 87  // ERROR_INVALID_PARAMETER
        case .notExportFormat: 6008  // ERROR_NOT_EXPORT_FORMAT
        case .invalidOperation: 1  // ERROR_INVALID_FUNCTION
        case .aborted: (cause as? RawCallbackError)?.code ?? 1_223  // the callback's own code, else ERROR_CANCELLED
        }
    }

    /// The errno the FUSE mount returns for this error.
    public var errno: Errno {
        switch code.base {
        case .fileNotFound: .noSuchFileOrDirectory
        case .accessDenied, .noKey, .noUserKeys, .wrongPassphrase, .lastUser: .permissionDenied
        case .sharingViolation: .resourceBusy
        case .readOnly: .readOnlyFileSystem
        case .alreadyExists: .fileExists
        case .notSupported, .encryptionDisallowed: .notSupported
        case .invalidArgument, .notExportFormat, .invalidOperation, .notEncrypted, .notOnVolume: .invalidArgument
        case .aborted: .canceled
        case .authenticationFailed, .corrupt, .unsupportedVersion, .ioError: .ioError
        }
    }

    // MARK: - Factories

    @inline(never)
    static func system(_ e: Errno, _ what: String, _ path: FilePath? = nil) -> EFSError {
        let where_ = path.map { "\($0): " } ?? ""
        let code: Code
        switch e {
        case .noSuchFileOrDirectory, .notDirectory: code = .fileNotFound
        case .permissionDenied, .notPermitted: code = .accessDenied
        case .readOnlyFileSystem: code = .readOnly
        case .fileExists: code = .alreadyExists
        case .resourceBusy, .resourceTemporarilyUnavailable: code = .sharingViolation
        case .invalidArgument: code = .invalidArgument
        case .notSupported: code = .notSupported
        default: code = .ioError
        }
        return EFSError(code, "\(where_)\(what): \(e)", cause: e)
    }

    @inline(never)
    static func format(_ e: FormatError, _ path: FilePath?) -> EFSError {
        let where_ = path.map { "\($0): " } ?? ""
        switch e.code {
        case .authenticationFailed: return EFSError(.authenticationFailed, "\(where_)\(e.message)", cause: e)
        case .unsupportedVersion: return EFSError(.unsupportedVersion, "\(where_)\(e.message)", cause: e)
        case .unsupportedAlgorithm: return EFSError(.notSupported, "\(where_)\(e.message)", cause: e)
        default: return EFSError(.corrupt, "\(where_)corrupt encrypted file: \(e.message)", cause: e)
        }
    }
}

/// Runs `body`, turning `Errno` and `FormatError` into `EFSError` with `path` in the message.
@inline(__always)
func mapErrors<T>(_ path: FilePath?, _ what: String, _ body: () throws -> T) throws(EFSError) -> T {
    do {
        return try body()
    } catch let e as EFSError {
        throw e
    } catch let e as Errno {
        throw EFSError.system(e, what, path)
    } catch let e as FormatError {
        throw EFSError.format(e, path)
    } catch {
        throw EFSError(.ioError, "\(path.map { "\($0): " } ?? "")\(what): \(error)", cause: error)
    }
}
