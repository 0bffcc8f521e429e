// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.
//
// The Win32 last-error slot: one DWORD per thread, as on Windows (where it lives in the TEB).

#include "efs.h"

static _Thread_local DWORD efs_last_error = ERROR_SUCCESS;

DWORD GetLastError(void) { return efs_last_error; }

void SetLastError(DWORD dwErrCode) { efs_last_error = dwErrCode; }
