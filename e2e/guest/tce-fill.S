/*
 * L2 "firmware" for the e2e benchmark (-bios): big-endian, entered at 0x100
 * in 64-bit real mode. It maps NENT pages of guest RAM from BASE on,
 * contiguously, into the default window (LIOBN 0x80000000, 4 KiB pages)
 * from IOBA 0, as a Linux guest maps a buffer, with H_PUT_TCE_INDIRECT
 * lists of 512 entries at 0x20000; then it idles. RAM layout:
 *   0x9000 entries put   0x9008 failed calls   0x9018 0xd0e when done
 */
#define NENT 16384                      /* 64 MiB */
#define H_PUT_TCE_INDIRECT 0x13c

    .text
    .globl _start
_start:
    .org 0x100
    li      20, 0
    oris    20, 20, 0x8000          /* r20 = LIOBN 0x80000000 */
    lis     21, 2                   /* r21 = 0x20000: the TCE list */
    li      22, 0
    ori     22, 22, 0x9000          /* r22 = 0x9000: status */
    li      25, 0                   /* r25 = first entry of the list */
    li      26, 0                   /* r26 = failed calls */
    std     25, 0(22)
    std     26, 8(22)
    std     26, 24(22)
list:
    li      27, 0                   /* r27 = index in the list */
fill:
    add     5, 25, 27
    sldi    5, 5, 12
    addis   5, 5, 0x400             /* BASE = 0x4000000 (64 MiB) */
    ori     5, 5, 3                 /* read | write */
    sldi    7, 27, 3
    stdx    5, 21, 7
    addi    27, 27, 1
    cmpdi   27, 512
    blt     fill
    li      3, H_PUT_TCE_INDIRECT
    mr      4, 20
    sldi    5, 25, 12               /* ioba */
    mr      6, 21
    li      7, 512
    sc      1
    cmpdi   3, 0
    beq     1f
    addi    26, 26, 1
1:  addi    25, 25, 512
    std     25, 0(22)
    std     26, 8(22)
    li      7, NENT
    cmpd    25, 7
    blt     list
    li      7, 0xd0e
    std     7, 24(22)
2:  b       2b
