/*
 * L2 "firmware" for case 6 (-bios): big-endian, entered at 0x100 in 64-bit
 * real mode. For DURATION seconds of timebase (512 MHz) it keeps issuing
 * H_PUT_TCE on LIOBN 0x80000000 (default PHB, 32-bit window, 4 KiB pages),
 * entries 0..NENT-1, each time with a new value, and records in RAM the last
 * value accepted (H_SUCCESS) for each entry. Then it reads every entry back
 * with H_GET_TCE and counts the entries that differ. RAM layout:
 *   0x9000 iterations   0x9008 failed H_PUT_TCE   0x9010 mismatches
 *   0x9018 0xd0e when done   0x9020 failed H_GET_TCE
 *   0x9028 verify passes (KEEP)
 * Built with -DKEEP (tce-keep.bin) it writes every entry once, then verifies
 * them forever, one pass after the other, so TCEs can be checked across moves.
 *   0x10000 + 8*e  last value written to entry e
 *   0x11000 + 8*e  value H_GET_TCE returned for entry e
 */
#ifndef DURATION
#define DURATION 30
#endif
#define NENT 16
#define H_GET_TCE 0x1c
#define H_PUT_TCE 0x20

    .text
    .globl _start
_start:
    .org 0x100
    li      20, 0
    oris    20, 20, 0x8000          /* r20 = LIOBN 0x80000000 */
    lis     21, 1                   /* r21 = 0x10000: last written */
    li      22, 0
    ori     22, 22, 0x9000          /* r22 = 0x9000: status */
    li      7, 0
    std     7, 24(22)
    std     7, 32(22)
    mftb    23                      /* r23 = start */
    li      24, DURATION
    lis     8, 0x1e84
    ori     8, 8, 0x8000            /* 512000000 */
    mulld   24, 24, 8               /* r24 = duration in ticks */
    li      25, 0                   /* r25 = iteration */
    li      26, 0                   /* r26 = failed puts */
loop:
    addi    25, 25, 1
    li      27, 0                   /* r27 = entry */
inner:
    sldi    5, 25, 4
    add     5, 5, 27
    andi.   5, 5, 0x7fff
    addi    5, 5, 0x100             /* page 0x100 .. 0x80ff: in RAM */
    sldi    28, 5, 12
    ori     28, 28, 3               /* r28 = tce: page | read | write */
    mr      6, 28
    sldi    5, 27, 12               /* ioba = entry * 4 KiB */
    mr      4, 20
    li      3, H_PUT_TCE
    sc      1
    cmpdi   3, 0
    bne     1f
    sldi    7, 27, 3
    stdx    28, 21, 7               /* last[entry] = tce */
    b       2f
1:  addi    26, 26, 1
2:  addi    27, 27, 1
    cmpdi   27, NENT
    blt     inner
    std     25, 0(22)
    std     26, 8(22)
#ifndef KEEP
    mftb    7
    subf    7, 23, 7
    cmpld   7, 24
    blt     loop
#endif
    li      31, 0                   /* r31 = verify passes */
again:
    li      27, 0
    li      29, 0                   /* r29 = mismatches */
    li      30, 0                   /* r30 = failed gets */
verify:
    li      3, H_GET_TCE
    mr      4, 20
    sldi    5, 27, 12
    sc      1
    sldi    7, 27, 3
    cmpdi   3, 0
    beq     3f
    addi    30, 30, 1
    li      4, -1
3:  addi    8, 21, 0x1000
    stdx    4, 8, 7                 /* got[entry] */
    ldx     9, 21, 7
    cmpd    9, 4
    beq     4f
    addi    29, 29, 1
4:  addi    27, 27, 1
    cmpdi   27, NENT
    blt     verify
    std     29, 16(22)
    std     30, 32(22)
    li      7, 0xd0e
    std     7, 24(22)
#ifdef KEEP
    addi    31, 31, 1
    std     31, 40(22)
    b       again
#endif
5:  b       5b
