//! The order the graph runs its nodes in, derived from the edges: a
//! topological order of the graph without its back edges (an echo reply
//! going back to the lookup, a fragment back to the output), found by a
//! depth-first walk from the nodes nothing sends to, in registration order.

/// `edges[i]` lists the nodes node `i` sends to. Returns node indices in
/// running order: every node comes after all the nodes that send to it,
/// except along back edges.
pub fn topological(edges: &[Vec<usize>]) -> Vec<usize> {
    let n = edges.len();
    let mut has_input = vec![false; n];
    for es in edges {
        for &e in es {
            has_input[e] = true;
        }
    }
    // 0 = not seen, 1 = on the walk's stack, 2 = done.
    let mut state = vec![0u8; n];
    let mut post = Vec::with_capacity(n);
    let roots = (0..n).filter(|&i| !has_input[i]).chain(0..n);
    for root in roots {
        if state[root] != 0 {
            continue;
        }
        // Iterative DFS: (node, next edge to follow).
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some(&mut (v, ref mut k)) = stack.last_mut() {
            if let Some(&w) = edges[v].get(*k) {
                *k += 1;
                // A node on the stack is an ancestor: w -> ... -> v -> w is a
                // back edge, ignored for the order.
                if state[w] == 0 {
                    state[w] = 1;
                    stack.push((w, 0));
                }
            } else {
                state[v] = 2;
                post.push(v);
                stack.pop();
            }
        }
    }
    post.reverse();
    post
}

#[cfg(test)]
mod tests {
    use super::topological;

    #[test]
    fn senders_come_before_receivers_and_back_edges_are_ignored() {
        // 0 -> 1 -> 2 -> 3, 2 -> 1 (back), 0 -> 4 -> 3
        let e = vec![vec![1, 4], vec![2], vec![1, 3], vec![], vec![3]];
        let o = topological(&e);
        let pos = |x| o.iter().position(|&y| y == x).unwrap();
        assert_eq!(o.len(), 5);
        assert!(pos(0) < pos(1) && pos(1) < pos(2) && pos(2) < pos(3));
        assert!(pos(4) < pos(3));
    }

    #[test]
    fn a_cycle_without_a_root_still_gets_every_node() {
        let e = vec![vec![1], vec![0]];
        assert_eq!(topological(&e), vec![0, 1]);
    }
}
