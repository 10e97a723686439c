# SPDX-License-Identifier: ISC
#
# Compiler and linker flag checks of vchan-conduit (no autoconf-archive).

# VC_CHECK_CFLAG(FLAG, [ACTION-IF-OK], [ACTION-IF-NOT])
# Does $CC accept FLAG without a warning? Default action: append FLAG to
# WARN_CFLAGS. -Werror makes clang's "unknown warning option" count.
AC_DEFUN([VC_CHECK_CFLAG], [
    AS_VAR_PUSHDEF([vc_var], [vc_cv_cflag_$1])
    AC_CACHE_CHECK([whether $CC accepts $1], [vc_var], [
        vc_save_CFLAGS=$CFLAGS
        CFLAGS="$CFLAGS -Werror $1"
        AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
                          [AS_VAR_SET([vc_var], [yes])], [AS_VAR_SET([vc_var], [no])])
        CFLAGS=$vc_save_CFLAGS])
    AS_VAR_IF([vc_var], [yes], [m4_default([$2], [WARN_CFLAGS="${WARN_CFLAGS:+$WARN_CFLAGS }$1"])], [$3])
    AS_VAR_POPDEF([vc_var])
])

# VC_CHECK_LINK_FLAGS(FLAGS, [ACTION-IF-OK], [ACTION-IF-NOT])
# Do FLAGS work for compiling and linking a program?
AC_DEFUN([VC_CHECK_LINK_FLAGS], [
    AS_VAR_PUSHDEF([vc_var], [vc_cv_ldflag_$1])
    AC_CACHE_CHECK([whether $CC can link with $1], [vc_var], [
        # The link command compiles too, so LDFLAGS reach both steps.
        vc_save_LDFLAGS=$LDFLAGS
        LDFLAGS="$LDFLAGS $1"
        AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
                       [AS_VAR_SET([vc_var], [yes])], [AS_VAR_SET([vc_var], [no])])
        LDFLAGS=$vc_save_LDFLAGS])
    AS_VAR_IF([vc_var], [yes], [$2], [$3])
    AS_VAR_POPDEF([vc_var])
])
