/*
 * L2 "firmware" for case flip (-bios): big-endian, entered at 0x100 in
 * 64-bit real mode. Forever, round after round, it rewrites entries
 * 0..NENT-1 of LIOBN 0x80000000 (default PHB, 4 KiB pages) with H_PUT_TCE,
 * each flipping between two values with its own period, so that a table
 * copied at one moment, read at another and compared at a third differs in
 * every way:
 *   entry e % 3 == 0: A, 0, A, 0, ...  (A -> 0 -> A)
 *   entry e % 3 == 1: 0, A, 0, A, ...  (0 -> A -> 0)
 *   entry e % 3 == 2: A, B, A, B, ...  (A -> B -> A)
 * where A maps page 0x100 + e and B page 0x200 + e, read and write, and
 * entry e flips every 2^((e / 3) % 8) rounds. RAM layout:
 *   0x9000 rounds   0x9008 failed H_PUT_TCE
 */
#define NENT 64
#define H_PUT_TCE 0x20

    .text
    .globl _start
_start:
    .org 0x100
    li      20, 0
    oris    20, 20, 0x8000          /* r20 = LIOBN 0x80000000 */
    li      22, 0
    ori     22, 22, 0x9000          /* r22 = 0x9000: status */
    li      25, 0                   /* r25 = round */
    li      26, 0                   /* r26 = failed puts */
    li      24, 3
loop:
    addi    25, 25, 1
    li      27, 0                   /* r27 = entry */
inner:
    divdu   9, 27, 24               /* r9 = e / 3 */
    mulld   10, 9, 24
    subf    10, 10, 27              /* r10 = e % 3 */
    andi.   9, 9, 7
    srd     11, 25, 9
    andi.   11, 11, 1               /* r11 = phase: (round >> k) & 1 */
    addi    28, 27, 0x100
    sldi    28, 28, 12
    ori     28, 28, 3               /* r28 = A */
    addi    6, 27, 0x200
    sldi    6, 6, 12
    ori     6, 6, 3                 /* r6 = B */
    cmpdi   10, 2
    beq     2f
    xor     12, 11, 10              /* e % 3 == 0: A on phase 0; == 1: A on phase 1 */
    mr      6, 28
    cmpdi   12, 0
    beq     3f
    li      6, 0
    b       3f
2:  cmpdi   11, 0                   /* A -> B -> A */
    bne     3f
    mr      6, 28
3:  sldi    5, 27, 12               /* ioba = entry * 4 KiB */
    mr      4, 20
    li      3, H_PUT_TCE
    sc      1
    cmpdi   3, 0
    beq     4f
    addi    26, 26, 1
4:  addi    27, 27, 1
    cmpdi   27, NENT
    blt     inner
    std     25, 0(22)
    std     26, 8(22)
    b       loop
